"""``POST /oauth/token`` (OAuth2 client credentials, ``accessToken.v1.json``) and the JWKS.

The parameters come as OPCP sends them (a JSON object) or as RFC 6749 §4.4.2 does (form-encoded);
the client may authenticate in the body or with HTTP Basic (RFC 6749 §2.3.1).
"""

from __future__ import annotations

import base64
import binascii
import json
from typing import Any
from urllib.parse import parse_qs

from fastapi import APIRouter, Request

from api.opcp.deps import PkiDep
from api.opcp.errors import OAuthError
from pki.core import InvalidInput, Unauthenticated

__all__ = ["router"]

router = APIRouter(tags=["authentication"])

_OAUTH_ERROR = {
    "type": "object",
    "properties": {"error": {"type": "string"}, "error_description": {"type": "string"}},
    "required": ["error", "error_description"],
}
_TOKEN_REQUEST = {
    "type": "object",
    "properties": {
        "client_id": {"type": "string"},
        "client_secret": {"type": "string"},
        "audience": {"type": "string", "format": "uri"},
        "grant_type": {"type": "string", "enum": ["client_credentials"]},
    },
    "required": ["client_id", "client_secret", "audience", "grant_type"],
}


async def _parameters(request: Request) -> dict[str, Any]:
    raw = await request.body()
    media = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if media == "application/x-www-form-urlencoded":
        try:
            form = parse_qs(raw.decode(), strict_parsing=False, max_num_fields=16)
        except (UnicodeDecodeError, ValueError):
            raise OAuthError(400, "invalid_request", "the form cannot be read") from None
        return {key: values[0] for key, values in form.items()}
    try:
        data = json.loads(raw)
    except (UnicodeDecodeError, ValueError):
        raise OAuthError(400, "invalid_request", "send a JSON object (or a form) with the token parameters") from None
    if not isinstance(data, dict):
        raise OAuthError(400, "invalid_request", "send a JSON object with the token parameters")
    return data


def _basic(request: Request) -> tuple[str, str] | None:
    header = request.headers.get("authorization", "")
    scheme, _, value = header.partition(" ")
    if scheme.lower() != "basic":
        return None
    try:
        user, _, password = base64.b64decode(value.strip(), validate=True).decode().partition(":")
    except (binascii.Error, UnicodeDecodeError, ValueError):
        raise OAuthError(401, "invalid_client", "unreadable Basic credentials") from None
    return user, password


@router.post(
    "/oauth/token",
    summary="Issue an access token (OAuth2 client credentials)",
    description="`client_id`, `client_secret`, `audience` (this pool's base URL) and `grant_type=client_credentials`; "
    "the answer's `access_token` is an ES256 JWT, valid `expires_in` seconds.",
    responses={
        200: {"description": "the token", "content": {"application/json": {"schema": {"type": "object"}}}},
        400: {"description": "missing or wrong parameters", "content": {"application/json": {"schema": _OAUTH_ERROR}}},
        401: {"description": "wrong client credentials", "content": {"application/json": {"schema": _OAUTH_ERROR}}},
    },
    openapi_extra={"requestBody": {"required": True, "content": {"application/json": {"schema": _TOKEN_REQUEST}}}},
)
async def issue_token(request: Request, pki: PkiDep) -> dict[str, Any]:
    params = await _parameters(request)
    basic = _basic(request)
    client_id, secret = basic if basic is not None else (params.get("client_id"), params.get("client_secret"))
    grant, audience = params.get("grant_type"), params.get("audience")
    if grant != "client_credentials":
        if grant is None:
            raise OAuthError(400, "invalid_request", "grant_type is missing")
        raise OAuthError(400, "unsupported_grant_type", "only grant_type=client_credentials")
    if not isinstance(client_id, str) or not isinstance(secret, str) or not client_id or not secret:
        raise OAuthError(401, "invalid_client", "client_id and client_secret are required")
    if not isinstance(audience, str) or not audience:
        raise OAuthError(400, "invalid_request", "audience is missing")
    try:
        grant_view = await _in_thread(pki, client_id, secret, audience)
    except Unauthenticated as error:
        raise OAuthError(401, "invalid_client", error.message) from None
    except InvalidInput as error:
        raise OAuthError(400, "invalid_request", error.message) from None
    return grant_view.as_dict()


async def _in_thread(pki: Any, client_id: str, secret: str, audience: str) -> Any:
    from starlette.concurrency import run_in_threadpool

    return await run_in_threadpool(pki.opcp.issue_token, client_id=client_id, client_secret=secret, audience=audience)


@router.get(
    "/.well-known/jwks.json",
    summary="The keys that verify access tokens (RFC 7517 JWK Set)",
    responses={200: {"description": "JWK Set"}},
)
def jwks(pki: PkiDep) -> dict[str, Any]:
    return pki.opcp.jwks()
