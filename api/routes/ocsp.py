"""``/ocsp``: the OCSP responder over HTTP (RFC 6960 Appendix A, RFC 5019 §5-6). Public.

POST takes a DER ``application/ocsp-request``; GET takes it base64-encoded in the path. Both
return ``application/ocsp-response``. A response from the pre-signed store carries RFC 5019
cache headers; ``max-age`` is capped by ``ocsp_max_age`` so that an HTTP cache never hides a
revocation for longer than that. Nonce responses are ``no-store``.
"""

from __future__ import annotations

import base64
import binascii

from fastapi import APIRouter, Request, Response
from starlette.types import ASGIApp, Receive, Scope, Send

from api.caching import cached_response
from api.deps import pki_of, public
from api.problems import PayloadTooLarge, problem_response
from pki.revocation import MAX_REQUEST_BYTES, OcspAnswer

router = APIRouter(tags=["OCSP"])

OCSP_RESPONSE = "application/ocsp-response"
_RESPONSES = {
    200: {
        "description": "a DER OCSPResponse (errors such as malformedRequest are OCSP statuses, still HTTP 200)",
        "content": {OCSP_RESPONSE: {"schema": {"type": "string", "format": "binary"}}},
    }
}


def _response(request: Request, answer: OcspAnswer) -> Response:
    if answer.cacheable and answer.next_update is not None and answer.this_update is not None:
        pki = pki_of(request)
        return cached_response(
            request,
            answer.der,
            OCSP_RESPONSE,
            now=pki.clock.now(),
            this_update=answer.this_update,
            next_update=answer.next_update,
            etag=answer.etag,
            max_age_cap=pki.settings.duration("ocsp_max_age"),
        )
    return Response(answer.der, media_type=OCSP_RESPONSE, headers={"Cache-Control": "no-store"})


@router.post(
    "/ocsp",
    summary="OCSP request (DER body)",
    response_class=Response,
    responses=_RESPONSES,
    openapi_extra={
        "x-evpki-public": True,
        "security": [],
        "requestBody": {
            "required": True,
            "content": {"application/ocsp-request": {"schema": {"type": "string", "format": "binary"}}},
        },
    },
)
async def ocsp_post(request: Request) -> Response:
    body = await request.body()
    return _response(request, pki_of(request).ocsp.respond(body))


@router.get("/ocsp/{encoded:path}", summary="OCSP request (base64 DER in the path)", response_class=Response,
            responses=_RESPONSES, **public())  # fmt: skip
async def ocsp_get(encoded: str, request: Request) -> Response:
    return _response(request, pki_of(request).ocsp.respond(_decode_get(encoded)))


def _decode_get(encoded: str) -> bytes:
    """RFC 6960 A.1: base64 of the DER, then URL-encoded (which the router has undone)."""
    text = encoded.strip("/")
    if len(text) > 2 * MAX_REQUEST_BYTES:
        return b""
    try:
        return base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        try:
            return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
        except (binascii.Error, ValueError):
            return b""


class OcspFastPath:
    """Answers ``/ocsp`` before FastAPI's routing, which costs more than the answer itself.

    Same behaviour as the two routes above (which stay for the OpenAPI document and as the
    fallback): the responder is public, so there is nothing to authenticate, and the body limit
    is OCSP's own.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            path, method = scope["path"], scope["method"]
            if path == "/ocsp" and method == "POST":
                await self._post(scope, receive, send)
                return
            if path.startswith("/ocsp/") and method == "GET":
                request = Request(scope, receive)
                answer = pki_of(request).ocsp.respond(_decode_get(path[len("/ocsp/") :]))
                await _response(request, answer)(scope, receive, send)
                return
        await self.app(scope, receive, send)

    async def _post(self, scope: Scope, receive: Receive, send: Send) -> None:
        request = Request(scope, receive)
        body = bytearray()
        try:
            async for chunk in request.stream():
                body += chunk
                if len(body) > MAX_REQUEST_BYTES:
                    raise PayloadTooLarge(f"an OCSP request is at most {MAX_REQUEST_BYTES} bytes")
        except PayloadTooLarge as error:
            response: Response = problem_response(413, error.code, "Payload too large", error.message, "/ocsp")
        else:
            response = _response(request, pki_of(request).ocsp.respond(bytes(body)))
        await response(scope, receive, send)
