"""A real server on 127.0.0.1, checked by OpenSSL as a client: OCSP over HTTP, CRLs, firmware signatures.

The issue's acceptance check: ``openssl ocsp -url`` says ``good``, then ``revoked`` right after a
revoke through the API, with ``Response verify OK``; ``openssl crl -verify`` accepts the CRLs
fetched over HTTP; ``openssl dgst -verify`` accepts a firmware signature made over HTTP.
"""

from __future__ import annotations

import base64
import socket
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import uvicorn
from cryptography import x509
from cryptography.hazmat.primitives import serialization

from api.app import create_app
from pki import PKI
from tests.conftest import make_csr, requires_openssl, run_openssl

pytestmark = [pytest.mark.interop, requires_openssl]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture(scope="module")
def server(pki: PKI) -> Iterator[str]:
    port = _free_port()
    config = uvicorn.Config(create_app(pki), host="127.0.0.1", port=port, log_level="warning", lifespan="on")
    instance = uvicorn.Server(config)
    thread = threading.Thread(target=instance.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not instance.started:
        if time.monotonic() > deadline or not thread.is_alive():
            pytest.fail("the test server did not start")
        time.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        instance.should_exit = True
        thread.join(timeout=10)


@pytest.fixture(scope="module")
def operator_token(pki: PKI) -> str:
    return pki.tokens.create(name=f"live-{uuid.uuid4().hex[:8]}", role="operator")[1]


def _write_chain(pki: PKI, ca_id: str, directory: Path) -> tuple[Path, Path]:
    chain = pki.cas.chain(ca_id)
    issuer, bundle = directory / f"{ca_id}.pem", directory / f"{ca_id}-chain.pem"
    issuer.write_bytes(chain[0].public_bytes(serialization.Encoding.PEM))
    bundle.write_bytes(b"".join(c.public_bytes(serialization.Encoding.PEM) for c in chain))
    return issuer, bundle


def _openssl_ocsp(url: str, issuer: Path, leaf: Path, bundle: Path) -> str:
    result = run_openssl("ocsp", "-url", f"{url}/ocsp", "-issuer", str(issuer), "-cert", str(leaf),
                         "-CAfile", str(bundle), "-timeout", "10")  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert "Response verify OK" in result.stderr, result.stderr
    return result.stdout


def test_openssl_ocsp_good_then_revoked(server: str, pki: PKI, operator_token: str, tmp_path: Path) -> None:
    station_id = f"CP{uuid.uuid4().hex[:10].upper()}"
    csr, _ = make_csr(station_id)
    headers = {"Authorization": f"Bearer {operator_token}"}
    with httpx.Client(base_url=server, headers=headers, timeout=20) as http:
        issued = http.post("/api/v1/certificates", json={"profile": "station", "csr": csr,
                                                         "identity": {"stationId": station_id}})  # fmt: skip
        assert issued.status_code == 201, issued.text
        leaf = tmp_path / "leaf.pem"
        leaf.write_text(issued.json()["certificate"]["certificatePem"])
        issuer, bundle = _write_chain(pki, "cso-sub", tmp_path)

        assert f"{leaf}: good" in _openssl_ocsp(server, issuer, leaf, bundle)
        serial = issued.json()["certificate"]["serial"]
        revoked = http.post(f"/api/v1/certificates/{serial}/revoke", json={"reason": "keyCompromise"})
        assert revoked.status_code == 200
        output = _openssl_ocsp(server, issuer, leaf, bundle)
        assert f"{leaf}: revoked" in output and "Reason: keyCompromise" in output, output

        for name in ("cso-sub.crl", "cso-sub-delta.crl"):
            fetched = http.get(f"/crl/{name}")
            assert fetched.status_code == 200
            (tmp_path / name).write_bytes(fetched.content)
            result = run_openssl("crl", "-inform", "DER", "-in", str(tmp_path / name), "-CAfile", str(bundle),
                                 "-verify", "-noout", "-text")  # fmt: skip
            assert "verify OK" in result.stderr, result.stderr
            assert f"Serial Number: {serial}" in result.stdout


def test_openssl_verifies_a_firmware_signature_made_over_http(
    server: str, pki: PKI, operator_token: str, tmp_path: Path
) -> None:
    firmware = tmp_path / "firmware.bin"
    firmware.write_bytes(b"\x7fELF" + bytes(range(256)) * 8192)  # 2 MiB
    headers = {"Authorization": f"Bearer {operator_token}", "Content-Type": "application/octet-stream"}
    with httpx.Client(base_url=server, headers=headers, timeout=30) as http, firmware.open("rb") as handle:
        response = http.post("/api/v1/firmware/sign", content=iter(lambda: handle.read(65536), b""),
                             params={"location": "https://fw.example/station-1.2.bin"})  # fmt: skip
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["updateFirmware"]["firmware"]["signature"] == body["signature"]
    (tmp_path / "sig.bin").write_bytes(base64.b64decode(body["signature"]))
    certificate = x509.load_pem_x509_certificate(body["signingCertificate"].encode())
    (tmp_path / "pub.pem").write_bytes(
        certificate.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
    )
    result = run_openssl("dgst", "-sha256", "-verify", str(tmp_path / "pub.pem"), "-signature",
                         str(tmp_path / "sig.bin"), str(firmware))  # fmt: skip
    assert result.returncode == 0 and "Verified OK" in result.stdout, result.stdout + result.stderr
