"""RFC 9457 problem details: the one place domain errors become HTTP statuses.

Every problem has a stable ``type`` URI per error class (``urn:evpki:problem:<code>``), a
``title``, the ``status``, a ``detail`` for humans and the request path as ``instance``; a
policy violation also names its ``rule``. Clients should switch on ``type``, never on text.
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from pki.core import (
    Conflict,
    EvpkiError,
    IntegrityError,
    InvalidInput,
    NotFound,
    PolicyViolation,
    Unauthenticated,
    Unavailable,
    VerificationFailed,
)

__all__ = [
    "AUTH_RESPONSES",
    "PROBLEM_JSON",
    "Forbidden",
    "PayloadTooLarge",
    "domain_problem",
    "install_problem_handlers",
    "internal_error_response",
    "problem_response",
]

PROBLEM_JSON = "application/problem+json"


class Forbidden(EvpkiError):
    """The caller is authenticated but its role may not do this (an edge concern, hence here)."""

    code = "forbidden"


class PayloadTooLarge(EvpkiError):
    code = "payload-too-large"


_STATUS: list[tuple[type[EvpkiError], int, str]] = [
    (PolicyViolation, 422, "Request refused by policy"),
    (VerificationFailed, 422, "Verification failed"),
    (InvalidInput, 400, "Invalid input"),
    (NotFound, 404, "Not found"),
    (Conflict, 409, "Conflict with the current state"),
    (Unauthenticated, 401, "Authentication required"),
    (Forbidden, 403, "Forbidden for this role"),
    (PayloadTooLarge, 413, "Payload too large"),
    (Unavailable, 503, "Service unavailable"),
    (IntegrityError, 500, "Stored state failed an integrity check"),
]


def _problem_type(code: str) -> str:
    return f"urn:evpki:problem:{code}"


def problem_response(status: int, code: str, title: str, detail: str, instance: str, **extra: Any) -> JSONResponse:
    body = {"type": _problem_type(code), "title": title, "status": status, "detail": detail, "instance": instance}
    body.update(extra)
    headers = {"WWW-Authenticate": 'Bearer realm="evpki"'} if status == 401 else None
    return JSONResponse(body, status_code=status, media_type=PROBLEM_JSON, headers=headers)


def _status_of(error: EvpkiError) -> tuple[int, str]:
    for cls, status, title in _STATUS:
        if isinstance(error, cls):
            return status, title
    return 500, "Error"


def domain_problem(error: EvpkiError, instance: str) -> dict[str, Any]:
    """The problem details ``error`` gets, as a body, for a refusal inside a larger answer (a batch)."""
    status, title = _status_of(error)
    body: dict[str, Any] = {
        "type": _problem_type(error.code),
        "title": title,
        "status": status,
        "detail": error.message,
        "instance": instance,
    }
    if isinstance(error, PolicyViolation):
        body["rule"] = error.rule
    return body


def _for_domain_error(request: Request, error: EvpkiError) -> JSONResponse:
    status, title = _status_of(error)
    extra = {"rule": error.rule} if isinstance(error, PolicyViolation) else {}
    return problem_response(status, error.code, title, error.message, request.url.path, **extra)


async def _domain_error(request: Request, error: Exception) -> JSONResponse:
    assert isinstance(error, EvpkiError)
    return _for_domain_error(request, error)


async def _validation_error(request: Request, error: Exception) -> JSONResponse:
    assert isinstance(error, RequestValidationError)
    errors = [
        {"loc": list(item.get("loc", ())), "msg": str(item.get("msg", "")), "type": str(item.get("type", ""))}
        for item in error.errors()
    ]
    detail = "; ".join(f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in errors) or "invalid request"
    return problem_response(400, "validation-error", "Invalid request", detail, request.url.path, errors=errors)


async def _http_error(request: Request, error: Exception) -> JSONResponse:
    assert isinstance(error, StarletteHTTPException)
    code = {404: "not-found", 405: "method-not-allowed", 413: "payload-too-large"}.get(error.status_code, "http-error")
    response = problem_response(error.status_code, code, str(error.detail), str(error.detail), request.url.path)
    # RFC 9110 §15.5.6: a 405 MUST name the allowed methods (Starlette puts them in the exception's headers).
    response.headers.update(error.headers or {})
    return response


def internal_error_response(instance: str) -> JSONResponse:
    """The 500 for an unexpected error: nothing of it reaches the client but the request path.

    Sent by :class:`api.observability.RequestContext`, the error boundary, which logs the exception.
    """
    return problem_response(500, "internal-error", "Internal error", "an unexpected error occurred", instance)


def install_problem_handlers(app: FastAPI) -> None:
    # Unexpected exceptions are not handled here but by RequestContext, where the request id is known.
    app.add_exception_handler(EvpkiError, _domain_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)


def _documented(title: str) -> dict[str, Any]:
    return {"description": title, "content": {PROBLEM_JSON: {"schema": {"$ref": "#/components/schemas/Problem"}}}}


# 401 and 403 come from the token check, so they are documented by api.deps.allow on exactly the
# operations that check a token; a public operation never answers them.
_AUTH_STATUSES = frozenset({401, 403})
PROBLEM_RESPONSES: dict[int | str, dict[str, Any]] = {
    status: _documented(title) for _, status, title in _STATUS if status not in _AUTH_STATUSES
}
AUTH_RESPONSES: dict[str, dict[str, Any]] = {
    str(status): _documented(title) for _, status, title in _STATUS if status in _AUTH_STATUSES
}
