"""The OPCP face of evpki: what CSMSs, OEM backends and MOs built for Hubject's Open Plug&Charge
Protocol call, served under ``/opcp`` by :func:`create_opcp_app` (a sub-application with its own
OpenAPI at ``/opcp/openapi.json`` and the OPCP error bodies), and the webhook delivery loop.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from fastapi import FastAPI
from starlette.routing import Mount

from api.opcp import ccp, cps, pcp, rcp, token, webhooks
from api.opcp.delivery import deliver_once, delivery_loop
from api.opcp.errors import ERROR_SCHEMA, install_opcp_handlers
from pki import PKI

__all__ = ["PREFIX", "create_opcp_app", "deliver_once", "delivery_loop", "mount_opcp"]

PREFIX = "/opcp"

_DESCRIPTION = """\
OPCP-compatible pool services (Open Plug&Charge Protocol 1.0): the Root Certificate Pool, the
Provisioning Certificate Pool, the Contract Certificate Pool, the CPS signers and webhooks, with
the OPCP paths, fields, status codes and roles.

* **Access**: `POST /oauth/token` with `client_id`, `client_secret` (from `evpki opcp client add`),
  `audience` (this pool's base URL) and `grant_type=client_credentials`; then
  `Authorization: Bearer <access_token>`. Keys: `/.well-known/jwks.json`.
* **Errors**: `{"errorMessages": [...], "traceId": uuid}`; the token endpoint answers RFC 6749 errors.
"""


def create_opcp_app(pki_of: Callable[[], PKI]) -> FastAPI:
    """The OPCP sub-application; ``pki_of`` returns the parent application's open PKI."""
    app = FastAPI(title="evpki OPCP pool services", version="1.0", description=_DESCRIPTION)
    app.state.pki_of = pki_of
    install_opcp_handlers(app)
    for module in (token, rcp, pcp, ccp, cps, webhooks):
        app.include_router(module.router)
    original = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            schema = original()
            components = schema.setdefault("components", {})
            components.setdefault("schemas", {})["Error"] = ERROR_SCHEMA
            components.setdefault("securitySchemes", {})["opcpBearer"] = {
                "type": "http",
                "scheme": "bearer",
                "bearerFormat": "JWT",
                "description": "an access token from POST /oauth/token",
            }
            app.openapi_schema = schema
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
    return app


def mount_opcp(app: FastAPI) -> None:
    """Serve the OPCP sub-application under :data:`PREFIX` of ``app`` (whose ``state.pki`` it uses).

    Starlette's mount pattern ends in ``.*``, which stops at a newline: a path id with an encoded
    newline would fall through to the parent's 404 with the parent's error body. Matched with
    DOTALL, every path under the prefix gets OPCP's answer. First among the parent's routes (none of
    which is under the prefix): an OPCP request is not tried against every /api route before it.
    """
    mount = Mount(PREFIX, app=create_opcp_app(lambda: app.state.pki))
    mount.path_regex = re.compile(mount.path_regex.pattern, re.DOTALL)
    app.router.routes.insert(0, mount)
