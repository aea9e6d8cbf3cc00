"""EST (RFC 7030) on a real TLS listener, driven by curl and openssl only, as RFC 7030's examples do.

The server is :class:`api.est.EstServer` on 127.0.0.1 (a free port) over a PKI of this module's own;
requests, keys and CSRs come from ``openssl req``, the bootstrap CA and its device certificate from
``openssl req -x509`` / ``openssl x509 -req``; every answer is read with ``openssl base64 -d |
openssl pkcs7 -print_certs`` and the issued certificates are checked with ``openssl verify``
against the chain ``/cacerts`` returned.
"""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization

from api.est import EstServer
from pki import PKI
from pki.ca import CertificateFilter
from tests.conftest import ORG, TEST_PASSPHRASE, _copy_database, drop_database, make_settings, requires_openssl

pytestmark = [
    pytest.mark.interop,
    requires_openssl,
    pytest.mark.skipif(shutil.which("curl") is None, reason="curl is not installed"),
]

STATION, SERIAL = "CP-EST-CURL", "SN-EST-CURL"
FACTORY_STATION, FACTORY_SERIAL = "CP-EST-FACTORY", "SN-EST-FACTORY"
SECC_ID = "DE*ABC*E0000001*1"


@dataclass(frozen=True)
class Live:
    pki: PKI
    port: int
    work: Path

    @property
    def base(self) -> str:
        return f"https://localhost:{self.port}"

    def curl(self, path: str, *args: str, out: str | None = None) -> tuple[int, str]:
        """Status and headers+body text of one curl request (the server name resolves to 127.0.0.1)."""
        target = self.work / (out or "last.out")
        result = subprocess.run(
            ["curl", "-sS", "--max-time", "30", "--resolve", f"localhost:{self.port}:127.0.0.1",
             "--cacert", str(self.work / "cso-root.pem"), "-o", str(target), "-D", "-", "-w", "\n%{http_code}",
             *args, f"{self.base}{path}"],
            cwd=self.work, capture_output=True, text=True, check=False, timeout=60,
        )  # fmt: skip
        assert result.returncode == 0, result.stderr
        status = int(result.stdout.rsplit("\n", 1)[1])
        return status, result.stdout + target.read_text(errors="replace")

    def sh(self, command: str) -> str:
        result = subprocess.run(
            command, shell=True, cwd=self.work, capture_output=True, text=True, check=False, timeout=60
        )
        assert result.returncode == 0, f"{command}\n{result.stdout}\n{result.stderr}"
        return result.stdout


def _openssl_csr(live: Live, name: str, subject: str) -> None:
    """``name.key`` and ``name.b64`` (base64 of the DER CSR), made by openssl alone."""
    live.sh(
        f"openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout {name}.key "
        f"-subj '{subject}' -outform DER -out {name}.der && openssl base64 -in {name}.der -out {name}.b64"
    )


def _certs(live: Live, b64: str, pem: str) -> str:
    return live.sh(f"openssl base64 -d -in {b64} | openssl pkcs7 -inform DER -print_certs -out {pem} && cat {pem}")


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory, _fresh_template: tuple[Path, str | None]) -> Iterator[Live]:
    """A PKI of the module's own (system clock: curl checks the server certificate's validity) and its listener."""
    home = tmp_path_factory.mktemp("est-live")
    work = home / "work"
    work.mkdir()
    # The factory CA and a device certificate, made without evpki: the bootstrap credential.
    subprocess.run(
        "openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout factory-ca.key "
        "-subj '/O=Station Factory/CN=Station Factory Device CA' -days 30 -out factory-ca.pem "
        "-addext basicConstraints=critical,CA:TRUE -addext keyUsage=critical,keyCertSign && "
        f"openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout device.key "
        f"-subj '/CN={FACTORY_SERIAL}' -out device.csr && "
        "openssl x509 -req -in device.csr -CA factory-ca.pem -CAkey factory-ca.key -CAcreateserial -days 30 "
        "-out device.pem",
        shell=True, cwd=work, check=True, capture_output=True, timeout=60,
    )  # fmt: skip
    url, name = _copy_database(_fresh_template, home)
    settings = make_settings(home, url).model_copy(update={"est_bootstrap_cas": str(work / "factory-ca.pem")})
    pki = PKI.open(settings)
    pki.stations.add(identity=STATION, serial=SERIAL)
    pki.stations.add(identity=FACTORY_STATION, serial=FACTORY_SERIAL)
    (work / "cso-root.pem").write_bytes(pki.cas.chain("cso-sub")[-1].public_bytes(serialization.Encoding.PEM))
    server = EstServer(pki, host="127.0.0.1", port=0, server_name="localhost")
    server.start()
    try:
        yield Live(pki, server.port, work)
    finally:
        server.stop()
        pki.close()
        drop_database(name)


def test_simpleenroll_with_a_one_time_secret_then_simplereenroll_with_the_certificate(live: Live) -> None:
    status, answer = live.curl("/.well-known/est/cacerts", out="cacerts.b64")
    assert status == 200 and "application/pkcs7-mime; smime-type=certs-only" in answer
    chain = _certs(live, "cacerts.b64", "chain.pem")
    assert "CSO Sub-CA" in chain and "CSO Root CA" in chain

    _, secret = live.pki.est.add_secret(identity=STATION, profile="station")
    _openssl_csr(live, "req", f"/O={ORG}/CN={SERIAL}")
    status, answer = live.curl(
        "/.well-known/est/simpleenroll", "-u", f"{STATION}:{secret}", "--data-binary", "@req.b64",
        "-H", "Content-Type: application/pkcs10", out="cert.b64",
    )  # fmt: skip
    assert status == 200, answer
    assert f"CN={SERIAL}" in _certs(live, "cert.b64", "cert.pem").replace(" = ", "=")
    assert live.sh("openssl verify -CAfile chain.pem cert.pem").strip() == "cert.pem: OK"

    status, answer = live.curl(
        "/.well-known/est/simpleenroll", "-u", f"{STATION}:{secret}", "--data-binary", "@req.b64",
        "-H", "Content-Type: application/pkcs10",
    )  # fmt: skip
    assert status == 401 and "is used" in answer  # single-use

    _openssl_csr(live, "renew", f"/O={ORG}/CN={SERIAL}")
    renew = ("--data-binary", "@renew.b64", "-H", "Content-Type: application/pkcs10")
    status, answer = live.curl(
        "/.well-known/est/cso-sub/simplereenroll", "--cert", "cert.pem", "--key", "req.key", *renew, out="new.b64"
    )
    assert status == 200, answer
    _certs(live, "new.b64", "new.pem")
    assert live.sh("openssl verify -CAfile chain.pem new.pem").strip() == "new.pem: OK"
    assert live.sh("openssl x509 -in new.pem -noout -subject") == live.sh("openssl x509 -in cert.pem -noout -subject")
    old_serial = live.sh("openssl x509 -in cert.pem -noout -serial").strip().split("=")[1]
    assert live.pki.certificates.get(old_serial, "cso-sub").status == "superseded"

    # The renewed certificate renews once: presenting it again is refused.
    status, answer = live.curl("/.well-known/est/simplereenroll", "--cert", "cert.pem", "--key", "req.key", *renew)
    assert status == 403 and "est.reenroll-superseded" in answer


def test_first_enrollment_with_a_bootstrap_certificate_from_the_factory_ca(live: Live) -> None:
    _openssl_csr(live, "factory-req", f"/O={ORG}/CN={FACTORY_SERIAL}")
    status, answer = live.curl(
        "/.well-known/est/simpleenroll", "--cert", "device.pem", "--key", "device.key",
        "--data-binary", "@factory-req.b64", "-H", "Content-Type: application/pkcs10", out="factory-cert.b64",
    )  # fmt: skip
    assert status == 200, answer
    _certs(live, "factory-cert.b64", "factory-cert.pem")
    live.curl("/.well-known/est/cso-sub/cacerts", out="cso-chain.b64")
    _certs(live, "cso-chain.b64", "cso-chain.pem")
    assert live.sh("openssl verify -CAfile cso-chain.pem factory-cert.pem").strip() == "factory-cert.pem: OK"
    assert [v.identity for v in live.pki.certificates.list(_stations(FACTORY_STATION))] == [FACTORY_STATION]


def _stations(identity: str) -> CertificateFilter:
    return CertificateFilter(identity=identity, profile="station")


def test_opcp_paths_for_an_secc_certificate(live: Live) -> None:
    status, _ = live.curl("/cpo/cacerts/ISO15118-2/secp256r1/", out="cpo.b64")
    assert status == 200
    cpo_chain = _certs(live, "cpo.b64", "cpo-chain.pem")
    assert "CPO Sub-CA 2" in cpo_chain and "V2G Root CA" in cpo_chain
    status, answer = live.curl("/.well-known/est/cpo/cacerts/ISO15118-20/secp521r1/")
    assert status == 404 and "iso15118-20" in answer

    _, secret = live.pki.est.add_secret(identity=SECC_ID, profile="secc")
    _openssl_csr(live, "secc", f"/C=DE/O={ORG}/CN={SECC_ID}/DC=CPO")
    status, answer = live.curl(
        "/.well-known/est/cpo/simpleenroll/ISO15118-2", "-u", f"{SECC_ID}:{secret}", "--data-binary", "@secc.b64",
        "-H", "Content-Type: application/pkcs10", out="secc.b64.out",
    )  # fmt: skip
    assert status == 200, answer
    _certs(live, "secc.b64.out", "secc.pem")
    assert live.sh("openssl verify -CAfile cpo-chain.pem secc.pem").strip() == "secc.pem: OK"


def test_refusals_are_clear_4xx(live: Live) -> None:
    _openssl_csr(live, "bad", f"/O={ORG}/CN={SERIAL}")
    (live.work / "garbage.b64").write_text("this is not base64 at all!\n")
    (live.work / "big.b64").write_text("A" * 20_000)
    pkcs10 = ("-H", "Content-Type: application/pkcs10")
    cases = [
        ("/.well-known/est/simpleenroll", ("--data-binary", "@bad.b64", *pkcs10), 401, "www-authenticate: basic"),
        ("/.well-known/est/simpleenroll", ("-u", f"{STATION}:est_wrong", "--data-binary", "@bad.b64", *pkcs10), 401,
         "wrong est identity"),
        ("/.well-known/est/simplereenroll", ("--data-binary", "@bad.b64", *pkcs10), 401, "client certificate"),
        ("/.well-known/est/no-such-ca/simpleenroll", ("--data-binary", "@bad.b64", *pkcs10), 404, "no est ca label"),
        ("/.well-known/est/simpleenroll", ("--data-binary", "@big.b64", *pkcs10), 413, "payload-too-large"),
        ("/.well-known/est/simpleenroll", ("--data-binary", "@bad.b64", "-H", "Content-Type: text/plain"), 415,
         "application/pkcs10"),
        ("/.well-known/est/simpleenroll", ("--cert", "device.pem", "--key", "device.key", "--data-binary",
                                           "@garbage.b64", *pkcs10), 400, "not base64"),
        ("/.well-known/est/simpleenroll", ("--cert", "device.pem", "--key", "device.key", "--data-binary",
                                           "@bad.b64", *pkcs10), 403, "station.cn-serial"),
    ]  # fmt: skip
    before = len(live.pki.certificates.list(_stations(STATION)))
    for path, args, status, needle in cases:
        got, answer = live.curl(path, *args)
        assert (got, needle in answer.lower()) == (status, True), (path, args, answer)
    assert len(live.pki.certificates.list(_stations(STATION))) == before


@pytest.mark.slow
def test_evpki_serve_offers_est_next_to_the_api_and_stops_on_sigterm(
    tmp_path: Path, _fresh_template: tuple[Path, str | None]
) -> None:
    import os
    import signal
    import socket
    import sys
    import time

    url, name = _copy_database(_fresh_template, tmp_path)
    ports = []
    for _ in range(2):
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            ports.append(sock.getsockname()[1])
    env = {
        **os.environ,
        "EVPKI_HOME": str(tmp_path),
        "EVPKI_DATABASE_URL": url,
        "EVPKI_KEY_PASSPHRASE": TEST_PASSPHRASE,
    }
    root = Path(__file__).resolve().parents[2]
    process = subprocess.Popen(
        [sys.executable, "-m", "cli.main", "serve", "--port", str(ports[0]), "--est-port", str(ports[1]),
         "--log-level", "warning"],
        cwd=root, env={**env, "PYTHONPATH": str(root)}, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
    )  # fmt: skip
    try:
        pki = PKI.open(make_settings(tmp_path, url), migrate=False)
        (tmp_path / "root.pem").write_bytes(pki.cas.chain("cso-sub")[-1].public_bytes(serialization.Encoding.PEM))
        pki.close()
        command = ["curl", "-sS", "--max-time", "5", "--resolve", f"localhost:{ports[1]}:127.0.0.1", "--cacert",
                   str(tmp_path / "root.pem"), f"https://localhost:{ports[1]}/.well-known/est/cacerts"]  # fmt: skip
        deadline = time.monotonic() + 60
        while True:
            fetched = subprocess.run(command, capture_output=True, text=True, check=False, timeout=30)
            if fetched.returncode == 0 or time.monotonic() > deadline or process.poll() is not None:
                break
            time.sleep(0.2)
        assert fetched.returncode == 0, fetched.stderr
        assert "CSO Root CA" in subprocess.run(
            "openssl base64 -d | openssl pkcs7 -inform DER -print_certs", shell=True, input=fetched.stdout,
            capture_output=True, text=True, check=True,
        ).stdout  # fmt: skip
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=20) == 0  # the EST listener stops with the API, cleanly
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
        drop_database(name)
