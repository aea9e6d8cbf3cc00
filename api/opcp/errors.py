"""OPCP error bodies: ``{"errorMessages": [...], "traceId": uuid}`` (the specs' ``Error`` schema), and
OAuth2's ``{"error", "error_description"}`` (RFC 6749 §5.2) on the token endpoint.

The OPCP sub-application maps the domain errors here, in one place: bad input 400, no or a bad
token 401 (with ``WWW-Authenticate``), role or scope 403, unknown 404, a conflicting state 409, a
dependency down 503.
"""

from __future__ import annotations

import uuid
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from pki.core import (
    Conflict,
    EvpkiError,
    InvalidInput,
    NotFound,
    PolicyViolation,
    Unauthenticated,
    Unavailable,
    VerificationFailed,
)
from pki.opcp import AccessDenied

__all__ = ["ERROR_SCHEMA", "OAuthError", "error_response", "install_opcp_handlers", "responses"]

ERROR_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "errorMessages": {"type": "array", "minItems": 1, "uniqueItems": True, "items": {"type": "string"}},
        "traceId": {"type": "string", "format": "uuid"},
    },
    "required": ["errorMessages", "traceId"],
}

_STATUS: list[tuple[type[EvpkiError], int]] = [
    (InvalidInput, 400),
    (PolicyViolation, 400),
    (VerificationFailed, 400),
    (Unauthenticated, 401),
    (AccessDenied, 403),
    (NotFound, 404),
    (Conflict, 409),
    (Unavailable, 503),
]
_TITLES = {400: "Bad Request", 401: "Unauthorized", 403: "Forbidden", 404: "Not Found", 409: "Conflict"}


class OAuthError(Exception):
    """A token request refused as RFC 6749 §5.2 says (``error`` code, description, status 400 or 401)."""

    def __init__(self, status: int, error: str, description: str) -> None:
        super().__init__(description)
        self.status = status
        self.error = error
        self.description = description


def error_response(status: int, *messages: str) -> JSONResponse:
    body = {
        "errorMessages": list(dict.fromkeys(m or _TITLES.get(status, "Error") for m in messages)),
        "traceId": str(uuid.uuid4()),
    }
    headers = {"WWW-Authenticate": 'Bearer realm="opcp"'} if status == 401 else None
    return JSONResponse(body, status_code=status, headers=headers)


def responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI entries for the error statuses an operation answers."""
    return {
        status: {
            "description": _TITLES.get(status, "Error"),
            "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}},
        }
        for status in statuses
    }


async def _domain(request: Request, error: Exception) -> JSONResponse:
    assert isinstance(error, EvpkiError)
    for cls, status in _STATUS:
        if isinstance(error, cls):
            return error_response(status, error.message)
    return error_response(500, "internal error")


async def _validation(request: Request, error: Exception) -> JSONResponse:
    assert isinstance(error, RequestValidationError)
    messages = [
        f"{'.'.join(str(p) for p in item.get('loc', ())[1:]) or 'body'} : {item.get('msg', 'invalid')}"
        for item in error.errors()
    ]
    return error_response(400, *(messages or ["invalid request"]))


async def _http(request: Request, error: Exception) -> JSONResponse:
    assert isinstance(error, StarletteHTTPException)
    response = error_response(error.status_code, str(error.detail))
    response.headers.update(error.headers or {})
    return response


async def _oauth(request: Request, error: Exception) -> JSONResponse:
    assert isinstance(error, OAuthError)
    headers = {"WWW-Authenticate": 'Basic realm="opcp"'} if error.status == 401 else None
    return JSONResponse(
        {"error": error.error, "error_description": error.description},
        status_code=error.status,
        headers={"Cache-Control": "no-store", **(headers or {})},
    )


def install_opcp_handlers(app: FastAPI) -> None:
    app.add_exception_handler(EvpkiError, _domain)
    app.add_exception_handler(RequestValidationError, _validation)
    app.add_exception_handler(StarletteHTTPException, _http)
    app.add_exception_handler(OAuthError, _oauth)
