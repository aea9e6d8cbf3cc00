"""The EST application (RFC 7030) served on the EST listener: cacerts, simpleenroll, simplereenroll.

Paths (RFC 7030 §3.2.2), each also under a CA label, ``/.well-known/est/<label>/…``, where the
label is one of our issuing CA ids (``cso-sub``, ``cpo-sub2``, …):

- ``GET  /.well-known/est/cacerts``: the CA chain, base64 PKCS#7 certs-only (§4.1.3);
- ``POST /.well-known/est/simpleenroll``: base64 PKCS#10 in (``application/pkcs10``), the issued
  certificate out as base64 PKCS#7 certs-only (``application/pkcs7-mime; smime-type=certs-only``,
  §4.2.3); authenticated by HTTP Basic with a one-time enrollment secret or a bootstrap client
  certificate;
- ``POST /.well-known/est/simplereenroll``: the same, authenticated by the certificate being
  renewed as the TLS client certificate (§4.2.2);
- ``GET  /.well-known/est/csrattrs``: 204, no CSR attributes are asked for (§4.5.2).

And the OPCP flavour (``shared/reference/opcp/est.v1.json``): ``POST
/.well-known/est/{ca}/simpleenroll/{iso_version}`` and ``GET /{ca}/cacerts/{iso_version}/{algorithm}/``
(also under ``/.well-known/est``), ``ca`` ∈ cpo|mo|oem|cps, ``iso_version`` ISO15118-2|ISO15118-20.

Everything is decided by ``pki.est``; this module reads the transport (body, Basic credentials, the
TLS client certificate from the ASGI TLS extension) and maps refusals: 400 malformed, 401 (with
``WWW-Authenticate: Basic``) no or wrong credentials, 403 policy, 404 unknown CA, 409 a secret or
certificate used meanwhile, 413 too large, 415 not ``application/pkcs10``; problem+json bodies.
"""

from __future__ import annotations

import base64
import binascii
import functools
from typing import Annotated, Any

import anyio.to_thread
from fastapi import FastAPI, Path, Request
from fastapi.responses import JSONResponse, Response
from starlette.concurrency import run_in_threadpool

from api.est.tls import client_certificate_der
from api.limits import BodyLimit
from api.observability import RequestContext
from api.problems import PROBLEM_JSON, PayloadTooLarge, install_problem_handlers, problem_response
from api.schemas import Problem
from pki import PKI
from pki.core import (
    Conflict,
    EvpkiError,
    InvalidInput,
    NotFound,
    PolicyViolation,
    Unauthenticated,
    Unavailable,
)
from pki.enrollment import MAX_BODY_BYTES, Target

__all__ = ["PKCS7_CERTS_ONLY", "create_est_app"]

PKCS7_CERTS_ONLY = "application/pkcs7-mime; smime-type=certs-only"
_PKCS10 = "application/pkcs10"
_BASIC_CHALLENGE = 'Basic realm="evpki EST", charset="UTF-8"'
_PREFIX = "/.well-known/est"
_ENROLLMENT_THREADS = 4


class UnsupportedMediaType(EvpkiError):
    code = "unsupported-media-type"


_STATUS: list[tuple[type[EvpkiError], int, str]] = [
    (UnsupportedMediaType, 415, "Unsupported media type"),
    (PayloadTooLarge, 413, "Payload too large"),
    (PolicyViolation, 403, "Enrollment refused by policy"),
    (InvalidInput, 400, "Malformed request"),
    (NotFound, 404, "Not found"),
    (Conflict, 409, "Conflict with the current state"),
    (Unauthenticated, 401, "Authentication required"),
    (Unavailable, 503, "Service unavailable"),
]


def _problem(status: int, title: str) -> dict[str, Any]:
    return {"description": title, "content": {PROBLEM_JSON: {"schema": {"$ref": "#/components/schemas/Problem"}}}}


_CERTS_ONLY_RESPONSE: dict[int | str, dict[str, Any]] = {
    200: {
        "description": "base64 of a DER PKCS#7 certs-only SignedData (`openssl base64 -d | openssl pkcs7 -inform DER`)",
        "content": {PKCS7_CERTS_ONLY: {"schema": {"type": "string"}}},
    },
}
_CACERTS_RESPONSES = {**_CERTS_ONLY_RESPONSE, 404: _problem(404, "unknown CA label, role, ISO version or algorithm")}
_ENROLL_RESPONSES: dict[int | str, dict[str, Any]] = {
    **_CERTS_ONLY_RESPONSE,
    400: _problem(400, "malformed base64 or PKCS#10"),
    401: _problem(401, "no or wrong credentials (`WWW-Authenticate: Basic`)"),
    403: _problem(403, "refused by policy: wrong identity, subject, profile or CA; the rule is named"),
    404: _problem(404, "unknown CA label, role or ISO version"),
    409: _problem(409, "the secret or the certificate being renewed was used meanwhile"),
    413: _problem(413, f"the body exceeds {MAX_BODY_BYTES} bytes"),
    415: _problem(415, "the Content-Type is not application/pkcs10"),
    503: _problem(503, "database or key store unavailable"),
}
_PKCS10_BODY: dict[str, Any] = {
    "requestBody": {
        "required": True,
        "description": "base64 of a DER PKCS#10 request (RFC 7030 §4.2.1; line breaks allowed)",
        "content": {_PKCS10: {"schema": {"type": "string"}}},
    }
}


def _base64_lines(der: bytes) -> bytes:
    # MIME base64 (76-character lines): `openssl base64 -d` reads it without -A.
    return base64.encodebytes(der)


def _certs_only(der: bytes) -> Response:
    return Response(
        _base64_lines(der),
        media_type=PKCS7_CERTS_ONLY,
        headers={"Content-Transfer-Encoding": "base64"},
    )


def _basic_credentials(request: Request) -> tuple[str, str] | None:
    header = request.headers.get("authorization")
    if header is None:
        return None
    scheme, _, value = header.partition(" ")
    if scheme.lower() != "basic":
        raise Unauthenticated("EST takes HTTP Basic credentials: 'Authorization: Basic base64(identity:secret)'")
    try:
        user, separator, password = base64.b64decode(value.strip(), validate=True).decode("utf-8").partition(":")
    except (binascii.Error, ValueError, UnicodeDecodeError):
        raise Unauthenticated("malformed HTTP Basic credentials") from None
    if not separator:
        raise Unauthenticated("malformed HTTP Basic credentials")
    return user, password


def _enrollment_threads(request: Request) -> anyio.CapacityLimiter:
    # Issuances write one at a time anyway (one SQLite writer, the audit chain's head row); more threads
    # than this only contend for the GIL with the event loop that runs the TLS handshakes.
    limiter: anyio.CapacityLimiter | None = getattr(request.app.state, "enrollment_threads", None)
    if limiter is None:
        limiter = request.app.state.enrollment_threads = anyio.CapacityLimiter(_ENROLLMENT_THREADS)
    return limiter


def _pki(request: Request) -> PKI:
    pki: PKI = request.app.state.pki
    return pki


async def _enroll(request: Request, target: Target, *, renew: bool) -> Response:
    media_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if media_type != _PKCS10:
        raise UnsupportedMediaType(f"send the request as Content-Type: {_PKCS10} (RFC 7030 §4.2.1)")
    body = await request.body()
    basic = _basic_credentials(request)
    client_certificate = client_certificate_der(request.scope)
    enroll = functools.partial(
        _pki(request).est.enroll, target, body, renew=renew, client_certificate=client_certificate, basic=basic
    )
    enrolled = await anyio.to_thread.run_sync(enroll, limiter=_enrollment_threads(request))
    return _certs_only(enrolled.pkcs7)


async def _cacerts(request: Request, target: Target) -> Response:
    return _certs_only(await run_in_threadpool(_pki(request).est.cacerts, target))


Label = Annotated[str, Path(description="one of our issuing CA ids, e.g. cso-sub or cpo-sub2", max_length=64)]
Role = Annotated[str, Path(description="OPCP role: cpo (SECC), mo (contract), oem (provisioning), cps", max_length=64)]
IsoVersion = Annotated[str, Path(description="ISO15118-2 or ISO15118-20", max_length=32)]
Algorithm = Annotated[str, Path(description="secp256r1, secp521r1 or ed448", max_length=32)]


def create_est_app(pki: PKI) -> FastAPI:
    """The EST ASGI app over ``pki``; serve it on a TLS listener with :class:`api.est.EstServer`."""
    app = FastAPI(
        title="evpki EST",
        version="0.1.0",
        description="RFC 7030 Enrollment over Secure Transport, and the OPCP EST paths. "
        "Served by `evpki serve --est-port` over TLS with optional client certificates.",
        docs_url=None,
        redoc_url=None,
        openapi_url=f"{_PREFIX}/openapi.json",
    )
    app.state.pki = pki
    install_problem_handlers(app)
    app.add_exception_handler(EvpkiError, _est_error)
    app.add_middleware(BodyLimit, default=MAX_BODY_BYTES)
    app.add_middleware(RequestContext)
    _routes(app)
    original = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            schema = original()
            schema.setdefault("components", {}).setdefault("schemas", {})["Problem"] = Problem.model_json_schema()
            schema["components"]["securitySchemes"] = {
                "basic": {"type": "http", "scheme": "basic", "description": "identity : one-time enrollment secret"},
                "clientCertificate": {"type": "mutualTLS", "description": "the TLS client certificate"},
            }
            app.openapi_schema = schema
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
    return app


def _routes(app: FastAPI) -> None:
    cacerts = {"responses": _CACERTS_RESPONSES, "response_class": Response, "tags": ["EST"]}
    enroll: dict[str, Any] = {
        "responses": _ENROLL_RESPONSES,
        "response_class": Response,
        "tags": ["EST"],
        "openapi_extra": {**_PKCS10_BODY, "security": [{"basic": []}, {"clientCertificate": []}]},
    }
    reenroll: dict[str, Any] = {**enroll, "openapi_extra": {**_PKCS10_BODY, "security": [{"clientCertificate": []}]}}

    @app.get(f"{_PREFIX}/cacerts", summary="CA certificates of the default CA (the station issuer)", **cacerts)
    async def default_cacerts(request: Request) -> Response:
        return await _cacerts(request, _pki(request).est.target(None))

    @app.post(f"{_PREFIX}/simpleenroll", summary="First enrollment; issuer by the credential's profile", **enroll)
    async def default_simpleenroll(request: Request) -> Response:
        return await _enroll(request, _pki(request).est.target(None), renew=False)

    @app.post(f"{_PREFIX}/simplereenroll", summary="Renew the TLS client certificate", **reenroll)
    async def default_simplereenroll(request: Request) -> Response:
        return await _enroll(request, _pki(request).est.target(None), renew=True)

    @app.get(f"{_PREFIX}/csrattrs", summary="No CSR attributes are asked for (204)", status_code=204, tags=["EST"])
    async def csrattrs() -> Response:
        return Response(status_code=204)

    @app.get(f"{_PREFIX}/{{label}}/cacerts", summary="CA certificates of one CA", **cacerts)
    async def label_cacerts(request: Request, label: Label) -> Response:
        return await _cacerts(request, await run_in_threadpool(_pki(request).est.target, label))

    @app.post(f"{_PREFIX}/{{label}}/simpleenroll", summary="First enrollment from one CA", **enroll)
    async def label_simpleenroll(request: Request, label: Label) -> Response:
        return await _enroll(request, await run_in_threadpool(_pki(request).est.target, label), renew=False)

    @app.post(f"{_PREFIX}/{{label}}/simplereenroll", summary="Renewal from one CA", **reenroll)
    async def label_simplereenroll(request: Request, label: Label) -> Response:
        return await _enroll(request, await run_in_threadpool(_pki(request).est.target, label), renew=True)

    @app.get(f"{_PREFIX}/{{label}}/csrattrs", summary="No CSR attributes are asked for (204)", status_code=204)
    async def label_csrattrs(request: Request, label: Label) -> Response:
        await run_in_threadpool(_pki(request).est.target, label)
        return Response(status_code=204)

    @app.post(f"{_PREFIX}/{{ca}}/simpleenroll/{{iso_version}}", summary="OPCP: a leaf of a role's CA", **enroll)
    async def opcp_simpleenroll(request: Request, ca: Role, iso_version: IsoVersion) -> Response:
        target = await run_in_threadpool(_pki(request).est.opcp_target, ca, iso_version)
        return await _enroll(request, target, renew=False)

    async def opcp_cacerts(request: Request, ca: Role, iso_version: IsoVersion, algorithm: Algorithm) -> Response:
        target = await run_in_threadpool(_pki(request).est.opcp_target, ca, iso_version, algorithm)
        return await _cacerts(request, target)

    for path in (
        "/{ca}/cacerts/{iso_version}/{algorithm}/",
        f"{_PREFIX}/{{ca}}/cacerts/{{iso_version}}/{{algorithm}}/",
    ):
        app.get(path, summary="OPCP: CA certificates of a role, ISO version and key algorithm", **cacerts)(opcp_cacerts)


async def _est_error(request: Request, error: Exception) -> JSONResponse:
    assert isinstance(error, EvpkiError)
    status, title = 500, "Error"
    for cls, code, name in _STATUS:
        if isinstance(error, cls):
            status, title = code, name
            break
    extra = {"rule": error.rule} if isinstance(error, PolicyViolation) else {}
    response = problem_response(status, error.code, title, error.message, request.url.path, **extra)
    if status == 401:
        response.headers["WWW-Authenticate"] = _BASIC_CHALLENGE
    return response
