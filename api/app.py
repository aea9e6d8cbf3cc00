"""The FastAPI application: routers, problem+json errors, body limits and background upkeep.

:func:`create_app` takes an open :class:`~pki.PKI` (tests, embedding) or opens one from the
``EVPKI_*`` settings; :func:`app_from_environment` is the factory ``evpki serve`` hands to
uvicorn, once per worker process. Workers share nothing but the database and the key store.

Upkeep runs in each worker every ``maintenance_interval``: CRLs that went stale are
regenerated and OCSP responses nearing nextUpdate are re-signed. Doing it in every worker is
harmless -- both are idempotent and serialised by the database -- and needs no leader.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
from collections.abc import AsyncIterator

from fastapi import FastAPI

from api import metrics
from api.limits import BodyLimit
from api.observability import RequestContext
from api.ocsp_asgi import OcspFirst
from api.opcp import delivery_loop, mount_opcp
from api.problems import install_problem_handlers
from api.routes import audit, cas, certificates, contracts, crl, firmware, health, ocsp, roots, stations, trust
from api.routes import ocpp as ocpp_routes
from api.routes.certificates import BATCH_BODY_LIMIT, BATCH_PATH
from api.schemas import Problem
from pki import PKI, Settings
from pki.core import EvpkiError
from pki.runtime import settle_gc

__all__ = ["app_from_environment", "create_app", "run_upkeep"]

log = logging.getLogger("evpki.api")

_DESCRIPTION = """\
The REST face of evpki, the certificate authority for EV charging.

* **Authentication**: `Authorization: Bearer <token>`; tokens come from `evpki token create --role R --name N`.
  Roles: `admin` (everything), `operator` (issue, revoke, firmware), `csms` (station and SECC issuance, reads),
  `auditor` (read-only, audit log). Each operation lists its roles under `x-evpki-roles`.
* **Public**: `/ocsp`, `/crl/*`, `/api/v1/roots`, `/healthz`, `/readyz`. `/metrics` (Prometheus) needs `auditor`.
* **OPCP** pool services under `/opcp` (OAuth2 client credentials; OpenAPI at `/opcp/openapi.json`).
* **Errors**: RFC 9457 `application/problem+json`; switch on `type` (`urn:evpki:problem:<code>`).
"""


def run_upkeep(pki: PKI) -> None:
    """One round of background upkeep: stale CRLs regenerated, OCSP responses pre-signed."""
    for ca in pki.cas.list():
        try:
            pki.crls.current(ca.id)
            pki.crls.current(ca.id, delta=True)
            pki.ocsp.presign(ca.id)
        except EvpkiError as error:  # e.g. an expired CA: it cannot sign; the others go on
            log.warning("upkeep of %s skipped: %s", ca.id, error.message)


async def _upkeep_loop(pki: PKI, interval: float) -> None:
    while True:
        try:
            await asyncio.to_thread(run_upkeep, pki)
        except Exception:
            log.exception("upkeep round failed")
        await asyncio.sleep(interval)


def create_app(
    pki: PKI | None = None, *, settings: Settings | None = None, upkeep: bool = False, freeze_gc: bool = False
) -> FastAPI:
    # freeze_gc (`evpki serve`): freeze what start-up left alive, see pki.runtime.gc_tuning.
    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        owned = pki is None
        app.state.pki = pki if pki is not None else PKI.open(settings or Settings())
        tasks = []
        if upkeep:
            interval = app.state.pki.settings.duration("maintenance_interval").total_seconds()
            tasks.append(asyncio.create_task(_upkeep_loop(app.state.pki, interval)))
            tasks.append(asyncio.create_task(delivery_loop(app.state.pki)))  # OPCP webhooks
        if freeze_gc:
            settle_gc()  # a long-running server: no full collection walks start-up state again
        try:
            yield
        finally:
            for task in tasks:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
            if owned:
                app.state.pki.close()

    app = OcspFirst(  # a FastAPI application that answers /ocsp ahead of itself
        title="evpki",
        version="0.1.0",
        description=_DESCRIPTION,
        lifespan=lifespan,
        openapi_tags=[
            {"name": "certificates", "description": "issue, renew, revoke, look up"},
            {"name": "certificate authorities"},
            {"name": "contracts", "description": "ISO 15118 contract registry: which vehicle (PCID) holds which eMAID"},
            {"name": "roots", "description": "trust anchors by OCPP InstallCertificateUse"},
            {"name": "trust", "description": "the trust store: foreign roots we trust, by OCPP root use"},
            {"name": "firmware", "description": "OCPP L01 / 1.6 SignedUpdateFirmware signing"},
            {
                "name": "stations",
                "description": "operator calls on a station: install/delete/list certificates, renew, security log, "
                "password, security profile, firmware update; stored until the station answers",
            },
            {"name": "audit"},
            {"name": "OCSP", "description": "RFC 6960 / RFC 5019 responder"},
            {"name": "CRL", "description": "full and delta CRLs"},
            {"name": "health", "description": "liveness and readiness"},
            {"name": "metrics", "description": "Prometheus exposition"},
            {
                "name": "OCPP",
                "description": "certificate handlers for any CSMS: station payload in, response + follow-ups out",
            },
        ],
    )
    if pki is not None:
        app.state.pki = pki  # usable before the lifespan runs (ASGI test transports skip it)
    install_problem_handlers(app)
    max_firmware = (pki.settings if pki is not None else settings or Settings()).firmware_max_bytes
    app.add_middleware(
        BodyLimit,
        large={
            "/api/v1/firmware/": max_firmware,
            re.compile(r"/api/v1/stations/[^/]+/firmware"): max_firmware,
            BATCH_PATH: BATCH_BODY_LIMIT,
        },
    )
    # Outermost of all: every response (a 413 too) carries the request id and is timed and logged.
    app.add_middleware(RequestContext)
    metrics.install()
    for module in (
        health,
        cas,
        certificates,
        contracts,
        roots,
        trust,
        firmware,
        stations,
        audit,
        ocsp,
        crl,
        ocpp_routes,
    ):
        app.include_router(module.router)
    app.include_router(cas.requests_router)
    app.include_router(metrics.router)
    mount_opcp(app)  # OPCP pool services under /opcp, with their own OpenAPI and error bodies
    _document_security(app)
    return app


def _document_security(app: FastAPI) -> None:
    original = app.openapi

    def openapi() -> dict[str, object]:
        if app.openapi_schema is None:
            schema = original()
            components = schema.setdefault("components", {})
            components.setdefault("securitySchemes", {})["bearer"] = {
                "type": "http",
                "scheme": "bearer",
                "description": "an evpki API token",
            }
            components.setdefault("schemas", {})["Problem"] = Problem.model_json_schema()
            app.openapi_schema = schema
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]


def app_from_environment() -> FastAPI:
    """The uvicorn factory of ``evpki serve``: settings from ``EVPKI_*``, upkeep on."""
    return create_app(settings=Settings(), upkeep=True, freeze_gc=True)
