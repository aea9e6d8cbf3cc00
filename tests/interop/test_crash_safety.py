"""Crash safety: ``evpki serve`` killed with SIGKILL in the middle of a burst of issuances.

Afterwards every certificate a client got a 201 for is in the database, every certificate row has
its audit record and every issuance record its certificate (nothing half-written), and
``evpki audit verify`` passes. Runs on SQLite, and on PostgreSQL when ``EVPKI_TEST_DATABASE_URL`` is set.

The kill comes once enough issuances have succeeded, not after a delay: what is asserted holds
whichever requests happen to be in flight at that moment.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from sqlalchemy import select

from pki import PKI
from pki.store.models import AuditRecord, CertificateRow
from tests.conftest import TEST_PASSPHRASE, _copy_database, drop_database, make_csr, make_settings

pytestmark = [pytest.mark.interop]

ROOT = Path(__file__).resolve().parents[2]
_THREADS = 6
_PER_THREAD = 25
_KILL_AFTER = 12  # successful issuances before the SIGKILL


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
def home(tmp_path: Path, _fresh_template: tuple[Path, str | None]) -> Iterator[tuple[Path, str]]:
    url, name = _copy_database(_fresh_template, tmp_path)
    yield tmp_path, url
    drop_database(name)


def _environment(home: Path, url: str) -> dict[str, str]:
    return {
        **os.environ,
        "EVPKI_HOME": str(home),
        "EVPKI_DATABASE_URL": url,
        "EVPKI_KEY_PASSPHRASE": TEST_PASSPHRASE,
        "PYTHONPATH": str(ROOT),
    }


def _evpki(*args: str) -> list[str]:
    return [sys.executable, "-m", "cli.main", *args]


def test_sigkill_during_a_burst_of_issuances_loses_nothing_acknowledged(home: tuple[Path, str]) -> None:
    path, url = home
    pki = PKI.open(make_settings(path, url))
    token = pki.tokens.create(name="crash-test", role="csms")[1]
    pki.close()
    env = _environment(path, url)
    port = _free_port()
    base = f"http://127.0.0.1:{port}"
    log = (path / "serve.log").open("wb")
    server = subprocess.Popen(
        _evpki("serve", "--host", "127.0.0.1", "--port", str(port), "--log-level", "warning"),
        cwd=ROOT,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        _wait_until_up(base, server)
        bodies = [[_station_body() for _ in range(_PER_THREAD)] for _ in range(_THREADS)]
        acknowledged: list[str] = []
        lock = threading.Lock()
        enough = threading.Event()

        def client(mine: list[dict[str, object]]) -> None:
            with httpx.Client(base_url=base, headers={"Authorization": f"Bearer {token}"}, timeout=30) as http:
                for body in mine:
                    try:
                        response = http.post("/api/v1/certificates", json=body)
                    except httpx.HTTPError:
                        return  # the server is gone
                    if response.status_code == 201:
                        with lock:
                            acknowledged.append(response.json()["certificate"]["serial"])
                            if len(acknowledged) >= _KILL_AFTER:
                                enough.set()
            enough.set()  # ran out of requests: kill anyway

        threads = [threading.Thread(target=client, args=(mine,), daemon=True) for mine in bodies]
        for thread in threads:
            thread.start()
        assert enough.wait(60), "no issuance succeeded"
        server.send_signal(signal.SIGKILL)
        server.wait(10)
        for thread in threads:
            thread.join(30)
        assert not any(thread.is_alive() for thread in threads)
    finally:
        if server.poll() is None:
            server.kill()
            server.wait(10)
        log.close()
    assert server.returncode == -signal.SIGKILL
    with lock:
        got = list(acknowledged)
    assert len(got) >= _KILL_AFTER

    pki = PKI.open(make_settings(path, url))
    try:
        for serial in got:
            assert pki.certificates.get(serial, "cso-sub").status == "valid"
        with pki._ctx.database.read() as session:
            certificates = {(row.issuer_id, row.serial) for row in session.execute(select(CertificateRow)).scalars()}
            stations = {
                (row.issuer_id, row.serial)
                for row in session.execute(select(CertificateRow).where(CertificateRow.profile == "station")).scalars()
            }
            issued = {
                (row.ca_id, row.serial)
                for row in session.execute(select(AuditRecord).where(AuditRecord.action == "issue")).scalars()
            }
        assert stations and stations <= issued, "a certificate row without its audit record"
        assert issued <= certificates, "an issuance record without its certificate"
        assert pki.audit.verify().ok
    finally:
        pki.close()
    verify = subprocess.run(
        _evpki("audit", "verify"), cwd=ROOT, env=env, capture_output=True, text=True, timeout=60, check=False
    )
    assert verify.returncode == 0, verify.stderr
    assert "audit chain intact" in verify.stdout


def _station_body() -> dict[str, object]:
    station_id = f"CP{uuid.uuid4().hex[:10].upper()}"
    csr, _ = make_csr(station_id)
    return {"profile": "station", "csr": csr, "identity": {"stationId": station_id}}


def _wait_until_up(base: str, server: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if server.poll() is not None:
            pytest.fail(f"evpki serve exited with {server.returncode}")
        try:
            if httpx.get(f"{base}/readyz", timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    pytest.fail("evpki serve did not become ready")
