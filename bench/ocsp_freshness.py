"""Benchmark: how long after a revocation commits does another process still answer ``good``? (SQLite, PostgreSQL)

One ``evpki serve`` (1 worker, CPU 0) serves OCSP under load (``bench/loadgen.py`` in its own
process, keep-alive connections cycling over every certificate's pre-signed request). Another
process -- a PKI instance of its own, like a second API server -- revokes ``--certs`` certificates
one at a time and reports when each revocation's commit returned (``time.monotonic``, which is
one clock for every process of the machine). Meanwhile probes keep asking the server about the
certificate being revoked, on keep-alive connections, and record every answer.

A revocation's *window* is how long after its commit returned the server still said ``good`` to a
request sent after that moment (0 when it never did). The table gives the windows' maximum and
99th percentile, how many stale answers there were, and the load the server carried.

    .venv/bin/python bench/ocsp_freshness.py [--certs 1000] [--postgres postgresql+psycopg://postgres@127.0.0.1:5432/postgres]
"""

from __future__ import annotations

import argparse
import asyncio
import math
import os
import random
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Sequence
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.x509 import ocsp

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import loadgen
from issuance import make_csrs

from api.app import run_upkeep
from pki import PKI, RequestIdentity, Settings

PASSPHRASE = "evpki-bench-passphrase"
ORGANIZATION = "Bench CSO GmbH"
CA_ID = "cso-sub"
HOST = "127.0.0.1"
PROBES = 4


def settings_for(home: Path, url: str, port: int) -> Settings:
    return Settings(
        home=home,
        database_url=url,
        key_passphrase=PASSPHRASE,  # type: ignore[arg-type]
        public_url=f"http://{HOST}:{port}",
    )


def revoker(home: Path, url: str) -> int:
    """Child process: revoke the serial on each stdin line, answer ``<serial> <monotonic after commit>``."""
    pki = PKI.open(settings_for(home, url, 0), migrate=False)
    try:
        print("ready", flush=True)
        for line in sys.stdin:
            serial = line.strip()
            pki.revocation.revoke(serial, "keyCompromise", ca_id=CA_ID, actor="bench", publish_crls=False)
            print(f"{serial} {time.monotonic():.9f}", flush=True)
    finally:
        pki.close()
    return 0


def load_process(port: int, requests_file: Path, concurrency: int, duration: float) -> int:
    """Child process: keep the server busy; print the rate reached."""
    blob = requests_file.read_bytes()
    requests = [blob[i : i + int.from_bytes(blob[i - 4 : i], "big")] for i in _offsets(blob)]
    result = loadgen.run_load(HOST, port, requests, concurrency=concurrency, duration=duration, warmup=0.5)
    print(f"{result.rate:.0f} {result.error_count}", flush=True)
    return 0


def _offsets(blob: bytes) -> list[int]:
    offsets, at = [], 0
    while at < len(blob):
        at += 4
        offsets.append(at)
        at += int.from_bytes(blob[at - 4 : at], "big")
    return offsets


class Probe:
    """Keep-alive POSTs of one request at a time; each answer as (sent, received, status)."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer

    async def ask(self, request: bytes) -> tuple[float, float, ocsp.OCSPCertStatus | None]:
        sent = time.monotonic()
        self.writer.write(request)
        head = await self.reader.readuntil(b"\r\n\r\n")
        length = int(head.lower().split(b"content-length:")[1].split(b"\r\n")[0])
        body = await self.reader.readexactly(length)
        received = time.monotonic()
        response = ocsp.load_der_ocsp_response(body)
        status = response.certificate_status if response.response_status == ocsp.OCSPResponseStatus.SUCCESSFUL else None
        return sent, received, status


class _Round:
    """The probes' answers about one certificate while it is revoked."""

    def __init__(self, request: bytes) -> None:
        self.request = request
        self.answers: list[tuple[float, float, ocsp.OCSPCertStatus | None]] = []
        self.committed: float | None = None
        self.done = asyncio.Event()

    async def keep_asking(self, probe: Probe) -> None:
        while not self.done.is_set():
            answer = await probe.ask(self.request)
            self.answers.append(answer)
            committed = self.committed
            if committed is not None and answer[0] > committed and answer[2] is ocsp.OCSPCertStatus.REVOKED:
                self.done.set()


async def probe_all(port: int, requests: list[bytes], serials: list[str], child: subprocess.Popen[str]) -> list[float]:
    probes = [Probe(*await asyncio.open_connection(HOST, port)) for _ in range(PROBES)]
    loop = asyncio.get_running_loop()
    windows: list[float] = []
    assert child.stdin is not None and child.stdout is not None
    for index, serial in enumerate(serials):
        round_ = _Round(requests[index])
        tasks = [asyncio.create_task(round_.keep_asking(probe)) for probe in probes]
        await asyncio.sleep(random.uniform(0.001, 0.003))  # the revocation lands while answers flow
        child.stdin.write(serial + "\n")
        child.stdin.flush()
        line = await loop.run_in_executor(None, child.stdout.readline)
        committed = round_.committed = float(line.split()[1])
        await asyncio.wait_for(round_.done.wait(), timeout=30)
        await asyncio.gather(*tasks)
        good = ocsp.OCSPCertStatus.GOOD
        stale = [received for sent, received, status in round_.answers if sent > committed and status is good]
        windows.append(max(stale) - committed if stale else 0.0)
        if index % 100 == 99:
            print(f"  {index + 1} revoked", file=sys.stderr)
    for probe in probes:
        probe.writer.close()
    return windows


def run(args: argparse.Namespace, url: str, label: str, tmp: Path) -> tuple[str, list[float], str]:
    home = tmp / f"home-{label}"
    port = loadgen.free_port()
    print(f"{label}: issuing {args.certs} certificates, pre-signing ...", file=sys.stderr)
    pki = PKI.open(settings_for(home, url, port))
    try:
        pki.cas.init(organization=ORGANIZATION, actor="bench")
        issuer = pki.cas.chain(CA_ID)[0]
        requests, serials = [], []
        for station, csr in make_csrs(args.certs, "FR"):
            view = pki.certificates.issue(
                profile="station", csr=csr, identity=RequestIdentity(station_id=station), actor="bench"
            ).certificate
            certificate = x509.load_pem_x509_certificate(view.certificate_pem.encode())
            der = ocsp.OCSPRequestBuilder().add_certificate(certificate, issuer, hashes.SHA1()).build()
            requests.append(der.public_bytes(serialization.Encoding.DER))
            serials.append(view.serial)
        run_upkeep(pki)
    finally:
        pki.close()
    http = [loadgen.http_request("POST", "/ocsp", der, content_type="application/ocsp-request") for der in requests]
    cores = sorted(os.sched_getaffinity(0))
    server_cpu, other_cpu = (cores[0], cores[1]) if len(cores) >= 2 else (None, None)
    env = {key: value for key, value in os.environ.items() if not key.startswith("EVPKI_")}
    env.update(EVPKI_HOME=str(home), EVPKI_DATABASE_URL=url, EVPKI_KEY_PASSPHRASE=PASSPHRASE,
               PYTHONPATH=str(Path(__file__).resolve().parents[1]))  # fmt: skip
    script = Path(sys.executable).with_name("evpki")
    command = [str(script)] if script.exists() else [sys.executable, "-m", "cli.main"]
    log = tmp / f"serve-{label}.log"
    server = loadgen.spawn([*command, "serve", "--host", HOST, "--port", str(port), "--log-level", "warning"],
                           cpu=server_cpu, env=env, log=log)  # fmt: skip
    requests_file = tmp / f"requests-{label}.bin"
    requests_file.write_bytes(b"".join(len(r).to_bytes(4, "big") + r for r in http))
    load = child = None
    child_env = {**os.environ, "PYTHONPATH": env["PYTHONPATH"]}
    # The load runs for about as long as the revocations take, then reports its rate.
    load_seconds = args.load_seconds if args.load_seconds > 0 else 2.0 + 0.012 * args.certs
    try:
        loadgen.wait_until_serving(HOST, port, loadgen.http_request("GET", "/healthz", keep_alive=False), timeout=60)
        for der in requests:  # every answer in the server's cache before the clock starts
            loadgen.fetch(HOST, port, loadgen.http_request("POST", "/ocsp", der, keep_alive=False))
        child = subprocess.Popen(
            [*(["taskset", "-c", str(other_cpu)] if other_cpu is not None else []), sys.executable, __file__,
             "--revoker", str(home), url],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, env=child_env,
        )  # fmt: skip
        assert child.stdout is not None
        if child.stdout.readline().strip() != "ready":
            raise SystemExit("the revoking process did not start")
        load = subprocess.Popen(
            [*(["taskset", "-c", str(other_cpu)] if other_cpu is not None else []), sys.executable, __file__,
             "--load", str(port), str(requests_file), str(args.concurrency), str(load_seconds)],
            stdout=subprocess.PIPE, text=True, env=child_env,
        )  # fmt: skip
        time.sleep(1.0)  # the load is up
        with loadgen.pinned(other_cpu):
            windows = asyncio.run(probe_all(port, http, serials, child))
        output = load.communicate(timeout=load_seconds + 60)[0].strip()
        rate = f"{output.split()[0]}/s" if output else "(stopped early)"
    finally:
        for process in (child, load):
            if process is not None and process.poll() is None:
                process.kill()
                process.wait()
        loadgen.stop(server)
    return label, windows, rate


def percentile(values: Sequence[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered), max(1, math.ceil(len(ordered) * q))) - 1]


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--certs", type=int, default=1000, help="certificates revoked (default 1000)")
    parser.add_argument("--concurrency", type=int, default=16, help="load connections (default 16)")
    parser.add_argument("--load-seconds", type=float, default=0.0, help="seconds of load (default: about the run's)")
    parser.add_argument("--postgres", metavar="URL", help="also measure on PostgreSQL (a scratch database is made)")
    parser.add_argument("--revoker", nargs=2, help=argparse.SUPPRESS)
    parser.add_argument("--load", nargs=4, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.revoker:
        return revoker(Path(args.revoker[0]), args.revoker[1])
    if args.load:
        port, path, concurrency, seconds = args.load
        return load_process(int(port), Path(path), int(concurrency), float(seconds))
    tmp = Path(tempfile.mkdtemp(prefix="evpki-bench-freshness-"))
    results = []
    try:
        results.append(run(args, f"sqlite:///{tmp / 'evpki.db'}", "SQLite", tmp))
        if args.postgres:
            from sqlalchemy import create_engine, text

            name = f"evpki_bench_{uuid.uuid4().hex[:8]}"
            admin = create_engine(args.postgres, isolation_level="AUTOCOMMIT")
            with admin.connect() as connection:
                connection.execute(text(f'CREATE DATABASE "{name}"'))
            try:
                results.append(run(args, args.postgres.rsplit("/", 1)[0] + f"/{name}", "PostgreSQL", tmp))
            finally:
                with admin.connect() as connection:
                    connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
                admin.dispose()
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    print(f"{'database':<12} {'revoked':>8} {'stale':>6} {'max ms':>8} {'p99 ms':>8} {'p50 ms':>8} {'load':>10}")
    for label, windows, rate in results:
        stale = sum(1 for window in windows if window > 0)
        worst, p99, p50 = (
            value * 1000 for value in (max(windows), percentile(windows, 0.99), percentile(windows, 0.5))
        )
        print(f"{label:<12} {len(windows):>8} {stale:>6} {worst:>8.2f} {p99:>8.2f} {p50:>8.2f} {rate:>10}")
    print(
        f"\nwindow: how long after a revocation's commit returned (in the revoking process) the server, another "
        f"process, still answered good to a request sent after it; {PROBES} probe connections on the certificate "
        f"being revoked, {args.concurrency} load connections on all of them."
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
