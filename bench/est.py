"""Benchmark: EST enrollments per second over mutual TLS (RFC 7030), 16 concurrent clients, p50/p99.

``evpki serve --est-port`` runs on a fresh PKI (SQLite), pinned to one core with ``taskset`` when
the machine has two; the clients run in this process on the other core (uvloop, bare asyncio TLS
streams). Three loads, each for ``--duration`` seconds after a warm-up:

* ``bootstrap`` (the headline figure: simpleenroll over mutual TLS): each client holds one
  keep-alive mTLS connection with its factory certificate, from a device CA made here without
  evpki and named by ``EVPKI_EST_BOOTSTRAP_CAS``, and enrolls station certificates on it: the
  bootstrap certificate checked, the station found by its serial, the CSR under the station policy,
  stored and audited.
* ``secret``: simpleenroll with a one-time secret (HTTP Basic) per request on a keep-alive TLS
  connection; every secret is consumed in the issuance's transaction.
* ``reenroll``: simplereenroll, renewing the certificate presented as the TLS client certificate,
  then the new one on a fresh connection, and so on: a full mutual-TLS handshake per enrollment,
  the renewal superseding the old certificate.

Every answer must be 200 and is read back (base64 PKCS#7 → the certificate, CN = the station's
serial); afterwards the database must hold every certificate and the audit chain must verify.

    .venv/bin/python bench/est.py [--duration 10] [--concurrency 16]
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import datetime as dt
import os
import ssl
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import pkcs7
from cryptography.x509.oid import NameOID

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import loadgen

from api.app import run_upkeep
from pki import PKI, RequestIdentity, Settings

ORGANIZATION = "Bench CSO GmbH"
PASSPHRASE = "evpki-bench-passphrase"
HOST = "127.0.0.1"
SERVER_NAME = "localhost"

try:
    import uvloop
except ImportError:  # pragma: no cover - uvicorn[standard] brings it
    uvloop = None


@dataclass
class Client:
    station: str
    serial: str
    key: ec.EllipticCurvePrivateKey | None
    certificate: x509.Certificate | None
    directory: Path
    factory: x509.Certificate | None = None  # the bootstrap certificate (CN = serial) from the factory CA
    factory_key: ec.EllipticCurvePrivateKey | None = None
    secrets: list[str] = field(default_factory=list)


@dataclass
class Result:
    label: str
    seconds: float = 0.0
    latencies: list[float] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    server_cpu: float = 0.0
    client_cpu: float = 0.0

    def percentile(self, q: float) -> float:
        ordered = sorted(self.latencies)
        return ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000 if ordered else float("nan")


def _csr(serial: str, key: ec.EllipticCurvePrivateKey) -> bytes:
    name = x509.Name([
        x509.NameAttribute(NameOID.ORGANIZATION_NAME, ORGANIZATION),
        x509.NameAttribute(NameOID.COMMON_NAME, serial),
    ])  # fmt: skip
    csr = x509.CertificateSigningRequestBuilder().subject_name(name).sign(key, hashes.SHA256())
    return base64.encodebytes(csr.public_bytes(serialization.Encoding.DER))


def _request(path: str, body: bytes, *, close: bool, basic: str | None = None) -> bytes:
    headers = [
        f"POST {path} HTTP/1.1",
        f"Host: {SERVER_NAME}",
        "Content-Type: application/pkcs10",
        f"Content-Length: {len(body)}",
    ]
    if basic is not None:
        headers.append(f"Authorization: Basic {base64.b64encode(basic.encode()).decode()}")
    if close:
        headers.append("Connection: close")
    return ("\r\n".join(headers) + "\r\n\r\n").encode() + body


async def _read_response(reader: asyncio.StreamReader) -> tuple[int, bytes]:
    head = await reader.readuntil(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split()[1])
    length = next(int(line.split(":", 1)[1]) for line in lines[1:] if line.lower().startswith("content-length:"))
    return status, await reader.readexactly(length)


def _certificate_of(body: bytes, serial: str) -> x509.Certificate:
    certificates = pkcs7.load_der_pkcs7_certificates(base64.b64decode(body))
    assert len(certificates) == 1, "RFC 7030 §4.2.3: only the issued certificate"
    names = certificates[0].subject.get_attributes_for_oid(NameOID.COMMON_NAME)
    assert names[0].value == serial, names
    return certificates[0]


def _client_context(trust: Path, client: Client | None) -> ssl.SSLContext:
    context = ssl.create_default_context(cafile=str(trust))
    if client is not None:
        assert client.certificate is not None and client.key is not None
        chain, key = client.directory / "cert.pem", client.directory / "key.pem"
        chain.write_bytes(client.certificate.public_bytes(serialization.Encoding.PEM))
        key.write_bytes(
            client.key.private_bytes(
                serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
            )
        )
        context.load_cert_chain(chain, key)
    return context


async def _reenroll_loop(client: Client, port: int, trust: Path, until: float, start: float, result: Result) -> None:
    while time.monotonic() < until:
        new_key = ec.generate_private_key(ec.SECP256R1())
        request = _request("/.well-known/est/simplereenroll", _csr(client.serial, new_key), close=True)
        context = _client_context(trust, client)
        began = time.monotonic()
        try:
            reader, writer = await asyncio.open_connection(HOST, port, ssl=context, server_hostname=SERVER_NAME)
            writer.write(request)
            status, body = await _read_response(reader)
            writer.close()
            if status != 200:
                result.errors.append(f"{status}: {body[:200]!r}")
                continue
            client.certificate, client.key = _certificate_of(body, client.serial), new_key
        except (OSError, asyncio.IncompleteReadError, ssl.SSLError) as exc:
            result.errors.append(f"{type(exc).__name__}: {exc}")
            continue
        if began >= start:
            result.latencies.append(time.monotonic() - began)


async def _keep_alive_loop(
    client: Client, port: int, trust: Path, until: float, start: float, result: Result, *, bootstrap: bool
) -> None:
    """simpleenroll on one keep-alive connection: with the factory certificate, or a secret per request."""
    identity = Client(client.station, client.serial, client.factory_key, client.factory, client.directory)
    context = _client_context(trust, identity if bootstrap else None)
    reader, writer = await asyncio.open_connection(HOST, port, ssl=context, server_hostname=SERVER_NAME)
    try:
        while time.monotonic() < until and (bootstrap or client.secrets):
            basic = None if bootstrap else f"{client.station}:{client.secrets.pop()}"
            body = _csr(client.serial, ec.generate_private_key(ec.SECP256R1()))
            request = _request("/.well-known/est/simpleenroll", body, close=False, basic=basic)
            began = time.monotonic()
            writer.write(request)
            status, answer = await _read_response(reader)
            if status != 200:
                result.errors.append(f"{status}: {answer[:200]!r}")
                continue
            _certificate_of(answer, client.serial)
            if began >= start:
                result.latencies.append(time.monotonic() - began)
    finally:
        writer.close()


async def _bootstrap_loop(client: Client, port: int, trust: Path, until: float, start: float, result: Result) -> None:
    await _keep_alive_loop(client, port, trust, until, start, result, bootstrap=True)


async def _secret_loop(client: Client, port: int, trust: Path, until: float, start: float, result: Result) -> None:
    await _keep_alive_loop(client, port, trust, until, start, result, bootstrap=False)


def _run(label: str, loop_fn, clients: list[Client], port: int, trust: Path, args, server_pid: int) -> Result:  # type: ignore[no-untyped-def]
    result = Result(label)

    async def drive() -> None:
        now = time.monotonic()
        start, until = now + args.warmup, now + args.warmup + args.duration
        measure = asyncio.get_running_loop().call_at

        marks: dict[str, float] = {}

        def mark(name: str) -> None:
            marks[name] = time.monotonic()
            marks[f"{name}-server"] = loadgen.process_cpu_seconds(server_pid)
            marks[f"{name}-client"] = time.process_time()

        measure(start, mark, "start")
        measure(until, mark, "end")
        await asyncio.gather(*(loop_fn(c, port, trust, until, start, result) for c in clients))
        if "end" not in marks:
            mark("end")
        result.seconds = marks["end"] - marks["start"]
        result.server_cpu = marks["end-server"] - marks["start-server"]
        result.client_cpu = marks["end-client"] - marks["start-client"]

    runner = asyncio.Runner(loop_factory=uvloop.new_event_loop if uvloop else None)
    with runner:
        runner.run(drive())
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--duration", type=float, default=10.0, help="measured seconds per load")
    parser.add_argument("--warmup", type=float, default=2.0, help="seconds before measuring")
    parser.add_argument("--concurrency", type=int, default=16, help="concurrent clients")
    parser.add_argument("--secrets", type=int, default=400, help="one-time secrets made per client for simpleenroll")
    parser.add_argument(
        "--load", choices=("all", "bootstrap", "secret", "reenroll"), default="all", help="which loads to run"
    )
    args = parser.parse_args()

    two_cores = loadgen.cpu_count() >= 2
    server_cpu, client_cpu = (0, 1) if two_cores else (None, None)
    with tempfile.TemporaryDirectory(prefix="evpki-bench-est-") as tmp:
        home = Path(tmp)
        settings = Settings(home=home, key_passphrase=PASSPHRASE)  # type: ignore[arg-type]
        pki = PKI.open(settings)
        pki.cas.init(organization=ORGANIZATION)
        setup_started = time.monotonic()
        factory = _factory_ca()
        (home / "factory-ca.pem").write_bytes(factory[0].public_bytes(serialization.Encoding.PEM))
        clients = []
        for index in range(args.concurrency):
            station, serial = f"CP-BENCH-{index:03d}", f"SN-BENCH-{index:03d}"
            pki.stations.add(identity=station, serial=serial)
            key = ec.generate_private_key(ec.SECP256R1())
            issued = pki.certificates.issue(
                profile="station",
                csr=base64.b64decode(_csr(serial, key)),
                identity=RequestIdentity(station_id=station, station_serial=serial),
            )
            directory = home / "clients" / station
            directory.mkdir(parents=True)
            client = Client(
                station,
                serial,
                key,
                x509.load_pem_x509_certificate(issued.certificate.certificate_pem.encode()),
                directory,
            )
            client.secrets = [
                pki.est.add_secret(identity=station, profile="station")[1]
                for _ in range(args.secrets if args.load in ("all", "secret") else 0)
            ]
            client.factory_key = ec.generate_private_key(ec.SECP256R1())
            client.factory = _factory_certificate(factory, serial, client.factory_key)
            clients.append(client)
        trust = home / "cso-root.pem"
        trust.write_bytes(pki.cas.chain("cso-sub")[-1].public_bytes(serialization.Encoding.PEM))
        before = len(pki.certificates.list(_all_station_filter()))
        # What `evpki serve` does first in the API worker (responder keys, CRLs, pre-signed OCSP) is done
        # now, so that its upkeep finds nothing to do inside the measured windows.
        run_upkeep(pki)
        pki.close()
        print(f"setup: {args.concurrency} stations, {sum(len(c.secrets) for c in clients)} secrets "
              f"in {time.monotonic() - setup_started:.1f} s")  # fmt: skip

        api_port, est_port = loadgen.free_port(), loadgen.free_port()
        env = {
            **os.environ,
            "EVPKI_HOME": str(home),
            "EVPKI_KEY_PASSPHRASE": PASSPHRASE,
            "EVPKI_EST_BOOTSTRAP_CAS": str(home / "factory-ca.pem"),
        }
        log = home / "serve.log"
        process = loadgen.spawn(
            [sys.executable, "-m", "cli.main", "serve", "--port", str(api_port), "--est-port", str(est_port),
             "--log-level", "warning"],
            cpu=server_cpu, env=env, cwd=Path(__file__).resolve().parents[1], log=log,
        )  # fmt: skip
        try:
            _wait_for_tls(est_port, trust, process)
            print(f"server pid {process.pid}", flush=True)
            with loadgen.pinned(client_cpu):
                loads = (
                    ("bootstrap", "simpleenroll, mTLS bootstrap cert, keep-alive", _bootstrap_loop),
                    ("secret", "simpleenroll, one-time secret, keep-alive", _secret_loop),
                    ("reenroll", "simplereenroll, new mTLS handshake each", _reenroll_loop),
                )
                results = [
                    _run(label, loop_fn, clients, est_port, trust, args, process.pid)
                    for name, label, loop_fn in loads
                    if args.load in ("all", name)
                ]
        finally:
            loadgen.stop(process)
        pki = PKI.open(settings, migrate=False)
        after = len(pki.certificates.list(_all_station_filter()))
        audit_ok = pki.audit.verify().ok
        pki.close()

    print()
    where = "pinned to core 0, clients on core 1" if two_cores else "and clients sharing the cores"
    print(f"EST over mutual TLS, {args.concurrency} concurrent clients, server {where}, SQLite")
    columns = ("enrollments/s", "p50 ms", "p99 ms", "errors", "server CPU", "client CPU", "server ms/enr")
    widths = (14, 8, 8, 7, 11, 11, 14)
    print(f"{'load':44} " + " ".join(f"{name:>{width}}" for name, width in zip(columns, widths, strict=True)))
    for result in results:
        rate = len(result.latencies) / result.seconds if result.seconds else 0.0
        print(
            f"{result.label:44} {rate:14.1f} {result.percentile(0.50):8.1f} {result.percentile(0.99):8.1f} "
            f"{len(result.errors):7d} {result.server_cpu / result.seconds:10.0%} "
            f"{result.client_cpu / result.seconds:10.0%} "
            f"{1000 * result.server_cpu / max(len(result.latencies), 1):14.2f}"
        )
    print("server ms/enr: the server's CPU time per enrollment (its ceiling on one core is 1000 / that per second)")
    enrolled = sum(len(r.latencies) for r in results)
    print(f"\nstored station certificates: {before} before, {after} after (≥ {enrolled} enrolled in the windows); "
          f"audit chain {'verifies' if audit_ok else 'BROKEN'}")  # fmt: skip
    for result in results:
        for error in result.errors[:3]:
            print(f"  {result.label}: {error}")


def _factory_ca() -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
    """A manufacturer's device CA made without evpki: the bootstrap CA (EVPKI_EST_BOOTSTRAP_CAS)."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Bench Station Factory CA")])
    now = dt.datetime.now(dt.UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(days=1))
        .not_valid_after(now + dt.timedelta(days=365))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .sign(key, hashes.SHA256())
    )
    return certificate, key


def _factory_certificate(
    factory: tuple[x509.Certificate, ec.EllipticCurvePrivateKey], serial: str, key: ec.EllipticCurvePrivateKey
) -> x509.Certificate:
    now = dt.datetime.now(dt.UTC)
    return (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, serial)]))
        .issuer_name(factory[0].subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(days=1))
        .not_valid_after(now + dt.timedelta(days=365))
        .sign(factory[1], hashes.SHA256())
    )


def _all_station_filter():  # type: ignore[no-untyped-def]
    from pki.ca import CertificateFilter

    return CertificateFilter(profile="station", limit=10**7)


def _wait_for_tls(port: int, trust: Path, process) -> None:  # type: ignore[no-untyped-def]
    import socket

    context = ssl.create_default_context(cafile=str(trust))
    deadline = time.monotonic() + 60
    while True:
        try:
            with (
                socket.create_connection((HOST, port), timeout=2) as raw,
                context.wrap_socket(raw, server_hostname=SERVER_NAME),
            ):
                return
        except OSError:
            if time.monotonic() > deadline or process.poll() is not None:
                raise SystemExit("the EST listener did not come up") from None
            time.sleep(0.1)


if __name__ == "__main__":
    main()
