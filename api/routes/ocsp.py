"""``/ocsp``: the OCSP responder over HTTP (RFC 6960 Appendix A, RFC 5019 §5-6). Public.

POST takes a DER ``application/ocsp-request``; GET takes it base64-encoded in the path. Both
return ``application/ocsp-response``. A response from the pre-signed store carries RFC 5019
cache headers; ``max-age`` is capped by ``ocsp_max_age`` so that an HTTP cache never hides a
revocation for longer than that. Nonce responses are ``no-store``.

These routes describe ``/ocsp`` in the OpenAPI document; :class:`api.ocsp_asgi.OcspEndpoint`, mounted
ahead of the framework, answers the same requests the same way without building a Request.
"""

from __future__ import annotations

import base64
import binascii

from fastapi import APIRouter, Request, Response

from api.caching import cached_response
from api.deps import pki_of, public
from pki.revocation import MAX_REQUEST_BYTES, OcspAnswer

__all__ = ["OCSP_RESPONSE", "decode_get", "router"]

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
    return _response(request, pki_of(request).ocsp.respond(decode_get(encoded)))


def decode_get(encoded: str) -> bytes:
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
