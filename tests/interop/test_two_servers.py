"""Two API server processes over one database: a revocation made through one is seen by OCSP on the other.

Both are real ``evpki serve`` processes (uvicorn, upkeep on) on 127.0.0.1, configured only by
``EVPKI_*`` environment variables and sharing nothing but the database (PostgreSQL with
``EVPKI_TEST_DATABASE_URL``, else the SQLite file) and the key directory. Server B pre-signs a
``good`` answer first, so the check is that its stored response is not served once the revocation
made through server A has committed, within the status feed's bound.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.x509 import ocsp

from pki import PKI
from tests.conftest import TEST_PASSPHRASE, make_csr

pytestmark = [pytest.mark.interop, pytest.mark.slow]

_START_TIMEOUT_S = 60  # only a bound for a server that never comes up; nothing waits for it otherwise
_FRESHNESS_DEADLINE_S = 10  # far above the 100 ms bound, so a loaded CI machine cannot fail it
_EVPKI = Path(sys.executable).parent / "evpki"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _wait_until_up(process: subprocess.Popen[bytes], url: str, log: Path) -> None:
    deadline = time.monotonic() + _START_TIMEOUT_S
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(f"evpki serve exited with {process.returncode}:\n{log.read_text(errors='replace')}")
        try:
            if httpx.get(f"{url}/healthz", timeout=2).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.1)
    pytest.fail(f"evpki serve did not answer on {url}:\n{log.read_text(errors='replace')}")


def _stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@pytest.fixture
def two_servers(fresh_pki: PKI, tmp_path: Path) -> Iterator[tuple[str, str]]:
    """Two ``evpki serve`` processes on the fresh PKI's database, started together, stopped at teardown."""
    settings = fresh_pki.settings
    env = {
        **os.environ,
        "EVPKI_HOME": str(settings.home),
        "EVPKI_DATABASE_URL": settings.resolved_database_url,
        "EVPKI_KEY_PASSPHRASE": TEST_PASSPHRASE,
    }
    started: list[tuple[subprocess.Popen[bytes], str, Path]] = []
    try:
        for name in ("a", "b"):
            port = _free_port()
            log = tmp_path / f"server-{name}.log"
            workdir = tmp_path / f"cwd-{name}"  # no stray evpki.toml from the repository
            workdir.mkdir()
            with log.open("wb") as out:
                process = subprocess.Popen(
                    [str(_EVPKI), "serve", "--host", "127.0.0.1", "--port", str(port), "--log-level", "warning"],
                    cwd=workdir,
                    env=env,
                    stdout=out,
                    stderr=subprocess.STDOUT,
                )
            started.append((process, f"http://127.0.0.1:{port}", log))
        for process, url, log in started:
            _wait_until_up(process, url, log)
        yield started[0][1], started[1][1]
    finally:
        for process, _, _ in started:
            _stop(process)


def _ocsp_status(server: str, certificate: x509.Certificate, issuer: x509.Certificate) -> ocsp.OCSPResponse:
    request = ocsp.OCSPRequestBuilder().add_certificate(certificate, issuer, hashes.SHA1()).build()
    response = httpx.post(
        f"{server}/ocsp",
        content=request.public_bytes(serialization.Encoding.DER),
        headers={"Content-Type": "application/ocsp-request"},
        timeout=20,
    )
    assert response.status_code == 200, response.text
    return ocsp.load_der_ocsp_response(response.content)


@pytest.mark.skipif(not _EVPKI.exists(), reason="the evpki console script is not installed in this environment")
def test_revocation_through_one_server_is_seen_by_ocsp_on_the_other(
    fresh_pki: PKI, two_servers: tuple[str, str]
) -> None:
    server_a, server_b = two_servers
    admin = fresh_pki.tokens.create(name=f"two-servers-{uuid.uuid4().hex[:8]}", role="admin")[1]
    station_id = f"CP{uuid.uuid4().hex[:10].upper()}"
    csr, _ = make_csr(station_id)
    headers = {"Authorization": f"Bearer {admin}"}
    with httpx.Client(base_url=server_a, headers=headers, timeout=30) as http:
        issued = http.post(
            "/api/v1/certificates", json={"profile": "station", "csr": csr, "identity": {"stationId": station_id}}
        )
        assert issued.status_code == 201, issued.text
        serial = issued.json()["certificate"]["serial"]
        certificate = x509.load_pem_x509_certificate(issued.json()["certificate"]["certificatePem"].encode())
        issuer = fresh_pki.cas.chain("cso-sub")[0]

        # Server B answers (and stores) "good" twice: the second answer is its pre-signed one.
        for _ in range(2):
            warm = _ocsp_status(server_b, certificate, issuer)
            assert warm.response_status == ocsp.OCSPResponseStatus.SUCCESSFUL
            assert warm.certificate_status == ocsp.OCSPCertStatus.GOOD

        revoked = http.post(f"/api/v1/certificates/{serial}/revoke", json={"reason": "keyCompromise"})
        assert revoked.status_code == 200, revoked.text

    # Within the status feed's bound (SQLite: the WAL-index header, usually the first answer; PostgreSQL:
    # LISTEN/NOTIFY with a poll behind it, 100 ms). One CI run saw SQLite's first answer after the commit
    # still good, so both are polled; the deadline is only there to end a failure (a stale answer for good).
    deadline = time.monotonic() + _FRESHNESS_DEADLINE_S
    answer = _ocsp_status(server_b, certificate, issuer)
    while answer.certificate_status != ocsp.OCSPCertStatus.REVOKED and time.monotonic() < deadline:
        time.sleep(0.02)
        answer = _ocsp_status(server_b, certificate, issuer)
    assert answer.response_status == ocsp.OCSPResponseStatus.SUCCESSFUL
    assert answer.certificate_status == ocsp.OCSPCertStatus.REVOKED
    assert answer.revocation_reason == x509.ReasonFlags.key_compromise
    assert answer.serial_number == certificate.serial_number
    # And server A, which made the revocation, agrees.
    assert _ocsp_status(server_a, certificate, issuer).certificate_status == ocsp.OCSPCertStatus.REVOKED
