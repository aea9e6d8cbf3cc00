"""Firmware signing and verification over REST: streamed bodies, OCPP payloads, tampering, limits."""

from __future__ import annotations

import base64
import hashlib

import httpx
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization

from api.app import create_app
from pki import PKI
from pki.operations.tokens import Role
from tests.api.conftest import bearer

pytestmark = pytest.mark.asyncio

_FIRMWARE = bytes(range(256)) * 4096  # 1 MiB


async def _chunks(data: bytes, size: int = 65536):  # type: ignore[no-untyped-def]
    for start in range(0, len(data), size):
        yield data[start : start + size]


async def _sign(client: httpx.AsyncClient, token: str, data: bytes, **params: str) -> httpx.Response:
    return await client.post(
        "/api/v1/firmware/sign",
        content=_chunks(data),
        params=params,
        headers={**bearer(token), "Content-Type": "application/octet-stream"},
    )


def _certificate_header(pem: str) -> str:
    der = x509.load_pem_x509_certificate(pem.encode()).public_bytes(serialization.Encoding.DER)
    return base64.b64encode(der).decode()


async def test_sign_then_verify_and_detect_tampering(client: httpx.AsyncClient, tokens: dict[Role, str]) -> None:
    signed = await _sign(client, tokens[Role.OPERATOR], _FIRMWARE, location="https://fw.example/v2.bin",
                         requestId="42", retrieveDateTime="2026-02-01T00:00:00Z")  # fmt: skip
    assert signed.status_code == 200, signed.text
    body = signed.json()
    assert body["sha256"] == hashlib.sha256(_FIRMWARE).hexdigest() and body["size"] == len(_FIRMWARE)
    update = body["updateFirmware"]
    assert update["requestId"] == 42
    assert update["firmware"]["location"] == "https://fw.example/v2.bin"
    assert update["firmware"]["retrieveDateTime"].startswith("2026-02-01T00:00:00")
    assert body["signedUpdateFirmware"]["firmware"]["signingCertificate"] == body["signingCertificate"]

    headers = {
        **bearer(tokens[Role.CSMS]),
        "Firmware-Signature": body["signature"],
        "Firmware-Signing-Certificate": _certificate_header(body["signingCertificate"]),
        "Content-Type": "application/octet-stream",
    }
    ok = await client.post("/api/v1/firmware/verify", content=_chunks(_FIRMWARE), headers=headers)
    assert ok.status_code == 200 and ok.json()["ok"] is True
    tampered = bytearray(_FIRMWARE)
    tampered[1000] ^= 1
    bad = await client.post("/api/v1/firmware/verify", content=_chunks(bytes(tampered)), headers=headers)
    assert bad.status_code == 422
    assert bad.json()["type"] == "urn:evpki:problem:verification-failed"
    assert "signature" in bad.json()["detail"]


async def test_csms_may_not_sign_and_garbage_headers_are_400(
    client: httpx.AsyncClient, tokens: dict[Role, str]
) -> None:
    assert (await _sign(client, tokens[Role.CSMS], b"firmware")).status_code == 403
    headers = {**bearer(tokens[Role.CSMS]), "Firmware-Signature": "AAAA", "Firmware-Signing-Certificate": "!!"}
    response = await client.post("/api/v1/firmware/verify", content=b"firmware", headers=headers)
    assert response.status_code == 400


async def test_upload_over_the_limit_is_413(fresh_pki: PKI, tokens: dict[Role, str]) -> None:
    small = PKI.open(fresh_pki.settings.model_copy(update={"firmware_max_bytes": 100_000}), clock=fresh_pki.clock)
    try:
        transport = httpx.ASGITransport(app=create_app(small))
        async with httpx.AsyncClient(transport=transport, base_url="http://evpki.test") as client:
            response = await _sign(client, tokens[Role.OPERATOR], _FIRMWARE)
        assert response.status_code == 413
        assert response.json()["type"] == "urn:evpki:problem:payload-too-large"
    finally:
        small.close()
