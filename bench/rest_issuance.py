"""Benchmark: certificates issued per second over REST (``POST /api/v1/certificates``), 2 uvicorn workers.

``evpki serve --workers 2`` on a fresh PKI (SQLite by default; PostgreSQL with ``--database-url``,
in a throw-away database created on that server and dropped afterwards) is driven by
``bench/loadgen.py`` with ``--concurrency`` keep-alive connections until ``--requests``
certificates have been issued -- twice: once with every connection opened at once, once with
them opened one by one (``--stagger`` apart). Each worker has its own ``SO_REUSEPORT`` socket,
so the kernel spreads connections by their address hash: a burst can still land unevenly, and
the second run shows what both workers do when the connections arrive over time.

CSRs (P-256, distinct station ids and serials) are made before the clock starts, and
``--warmup-requests`` more are issued first over short connections so that both workers have
decrypted the CA key before the timed runs. Every response must be 201 and is checked (the
certificate names the station asked for); afterwards the database must hold every certificate
and the audit chain must verify. The workers, PostgreSQL and the load generator share the
machine's cores: the table shows how much CPU each took.

The crypto-only rate (CSR checks and signing in this process, nothing stored, no HTTP) is measured
in the same run, before and after the timed runs, while the server idles; it is what one core can
sign, so ``vs crypto`` shows how much of one core's signing pace each run reaches. Concurrent
requests in a worker are stored together by the group commit (:mod:`pki.ca.group_commit`).

    .venv/bin/python bench/rest_issuance.py [--requests 3000] [--concurrency 16]
    .venv/bin/python bench/rest_issuance.py --database-url postgresql+psycopg://postgres@127.0.0.1:5432/postgres
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from sqlalchemy import create_engine, func, select, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import OperationalError

# Runnable as a plain script from any directory: the repository root holds ``pki``.
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import loadgen
from issuance import make_csrs, time_crypto_only
from loadgen import LoadResult

from api.app import run_upkeep
from pki import PKI, Settings
from pki.store.models import CertificateRow

ORGANIZATION = "Bench CSO GmbH"
PASSPHRASE = "evpki-bench-passphrase"
HOST = "127.0.0.1"
PATH = "/api/v1/certificates"
WORKERS = 2
AIM_RATE = 1000.0
AIM_P99_MS = 100.0


@dataclass(frozen=True, slots=True)
class Station:
    station_id: str
    serial: str  # the CSR's CN (OCPP A00.FR.511)
    body: bytes  # the JSON request


def make_stations(n: int, prefix: str) -> list[Station]:
    out = []
    for i in range(n):
        station_id, serial = f"CP-{prefix}{i:06d}", f"SN-{prefix}{i:06d}"
        key = ec.generate_private_key(ec.SECP256R1())
        name = x509.Name(
            [
                x509.NameAttribute(NameOID.ORGANIZATION_NAME, ORGANIZATION),
                x509.NameAttribute(NameOID.COMMON_NAME, serial),
            ]
        )
        csr = x509.CertificateSigningRequestBuilder().subject_name(name).sign(key, hashes.SHA256())
        body = {
            "profile": "station",
            "csr": csr.public_bytes(serialization.Encoding.PEM).decode(),
            "identity": {"stationId": station_id, "stationSerial": serial},
        }
        out.append(Station(station_id, serial, json.dumps(body).encode()))
    return out


@contextmanager
def scratch_database(server_url: str | None) -> Iterator[str | None]:
    """A fresh PostgreSQL database on ``server_url`` (dropped afterwards), or None for SQLite."""
    if server_url is None:
        yield None
        return
    admin = create_engine(server_url, isolation_level="AUTOCOMMIT")
    name = f"evpki_bench_{uuid.uuid4().hex[:10]}"
    try:
        with admin.connect() as connection:
            connection.execute(text(f'CREATE DATABASE "{name}"'))
    except OperationalError as exc:
        admin.dispose()
        reason = str(exc.orig).strip().splitlines()[0] if exc.orig else str(exc)
        raise SystemExit(f"PostgreSQL unavailable: {reason}") from None
    try:
        yield make_url(server_url).set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as connection:
            connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def settings_for(home: Path, url: str, port: int) -> Settings:
    return Settings(
        home=home,
        database_url=url,
        key_passphrase=PASSPHRASE,  # type: ignore[arg-type]
        public_url=f"http://{HOST}:{port}",
    )


def prepare(home: Path, url: str, port: int) -> str:
    """Initialise the PKI and return an operator token.

    The upkeep a server runs in every worker at start (CRLs, OCSP responders with their keys,
    pre-signed responses) is done here first, so that it does not eat into the timed runs.
    """
    pki = PKI.open(settings_for(home, url, port))
    try:
        pki.cas.init(organization=ORGANIZATION, actor="bench")
        run_upkeep(pki)
        _, token = pki.tokens.create(name="bench", role="operator", actor="bench")
    finally:
        pki.close()
    return token


def start_server(home: Path, url: str, port: int, log: Path) -> subprocess.Popen[bytes]:
    env = {key: value for key, value in os.environ.items() if not key.startswith("EVPKI_")}
    env.update(
        EVPKI_HOME=str(home),
        EVPKI_DATABASE_URL=url,
        EVPKI_KEY_PASSPHRASE=PASSPHRASE,
        EVPKI_PUBLIC_URL=f"http://{HOST}:{port}",
        PYTHONPATH=str(Path(__file__).resolve().parents[1]),
    )
    script = Path(sys.executable).with_name("evpki")
    command = [str(script)] if script.exists() else [sys.executable, "-m", "cli.main"]
    argv = [*command, "serve", "--host", HOST, "--port", str(port), "--workers", str(WORKERS), "--log-level", "warning"]
    return loadgen.spawn(argv, env=env, log=log)


def worker_pids(server: int) -> list[int]:
    """uvicorn's worker processes (multiprocessing spawn children; not its resource tracker)."""
    workers = []
    for pid in loadgen.children(server):
        try:
            command = Path(f"/proc/{pid}/cmdline").read_bytes()
        except OSError:
            continue
        if b"spawn_main" in command:
            workers.append(pid)
    return workers


def requests_for(stations: Sequence[Station], token: str, *, keep_alive: bool) -> list[bytes]:
    headers = {"Authorization": f"Bearer {token}", "Accept": "application/json"}
    return [
        loadgen.http_request(
            "POST", PATH, station.body, content_type="application/json", keep_alive=keep_alive, headers=headers
        )
        for station in stations
    ]


def check_responses(stations: Sequence[Station], result: LoadResult) -> int:
    """Every 201 body names the station asked for, and its certificate's CN is the station serial."""
    for index, body in result.samples:
        station = stations[index]
        issued = json.loads(body)["certificate"]
        certificate = x509.load_pem_x509_certificate(issued["certificatePem"].encode())
        common_name = certificate.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value
        if issued["identity"] != station.station_id or common_name != station.serial:
            raise SystemExit(f"response {index} is for {issued['identity']}/{common_name}, not {station.station_id}")
    return len(result.samples)


def check_database(home: Path, url: str, port: int, expected: int) -> None:
    pki = PKI.open(settings_for(home, url, port), migrate=False)
    try:
        engine = create_engine(url)
        with engine.connect() as connection:
            table = CertificateRow.__table__  # type: ignore[attr-defined]
            stored = connection.execute(select(func.count()).where(table.c.profile == "station")).scalar_one()
        engine.dispose()
        if stored != expected:
            raise SystemExit(f"the database holds {stored} station certificates, expected {expected}")
        if not pki.audit.verify().ok:
            raise SystemExit("the audit chain does not verify after the run")
    finally:
        pki.close()


def database_pids(url: str) -> list[int]:
    """The PostgreSQL backends serving the workers' pooled connections to the bench database."""
    engine = create_engine(url)
    try:
        with engine.connect() as connection:
            query = text(
                "SELECT pid FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()"
            )
            return [int(pid) for pid in connection.execute(query).scalars()]
    finally:
        engine.dispose()


@dataclass(frozen=True, slots=True)
class Timed:
    result: LoadResult
    workers: list[int]
    database: list[int]

    def cpu(self, pids: Sequence[int]) -> float:
        return sum(self.result.server_cpu.get(pid, 0.0) for pid in pids)


@dataclass(frozen=True, slots=True)
class Outcome:
    backend: str
    runs: list[Timed]
    checked: int
    warmup_seconds: float
    crypto_rates: list[float]


def run(args: argparse.Namespace) -> Outcome:
    # Two timed runs on one server: every connection opened at once (what a burst of clients
    # does), then opened one by one, which lets the workers' accept race spread them.
    modes = [("conns at once", 0.0), ("conns one by one", args.stagger)]
    total = args.warmup_requests + len(modes) * args.requests
    print(f"generating {total} P-256 CSRs (not timed) ...", file=sys.stderr)
    stations = make_stations(total, uuid.uuid4().hex[:4].upper())
    warm = stations[: args.warmup_requests]
    tmp = Path(tempfile.mkdtemp(prefix="evpki-bench-rest-"))
    server = None
    try:
        with scratch_database(args.database_url) as pg_url:
            home = tmp / "home"
            url = pg_url or f"sqlite:///{home / 'evpki.db'}"
            backend = "PostgreSQL" if pg_url else "SQLite"
            port = loadgen.free_port()
            token = prepare(home, url, port)
            log = tmp / "serve.log"
            server = start_server(home, url, port, log)
            health = loadgen.http_request("GET", "/healthz", keep_alive=False)
            try:
                loadgen.wait_until_serving(HOST, port, health, timeout=60, alive=lambda: server.poll() is None)
            except OSError as exc:
                raise SystemExit(f"evpki serve never answered ({exc}):\n{log.read_text(errors='replace')}") from None
            deadline = time.monotonic() + 30
            while len(workers := worker_pids(server.pid)) < WORKERS and time.monotonic() < deadline:
                time.sleep(0.1)
            print(f"warm-up: {len(warm)} requests over new connections ...", file=sys.stderr)
            started = time.perf_counter()
            warmup = loadgen.run_load(
                HOST,
                port,
                requests_for(warm, token, keep_alive=False),
                label="warm-up",
                concurrency=args.concurrency,
                keep_alive=False,
                count=len(warm),
                expect_status=201,
            )
            warmup_seconds = time.perf_counter() - started
            if warmup.errors:
                raise SystemExit(f"warm-up failed: {dict(warmup.errors)}\n{log.read_text(errors='replace')[-3000:]}")
            crypto_csrs = make_csrs(args.requests // 2 or 1, "CR")
            crypto_rates = [time_crypto_only(url, home / "keys", crypto_csrs).rate]
            runs, checked = [], 0
            for i, (mode, stagger) in enumerate(modes):
                batch = stations[args.warmup_requests + i * args.requests :][: args.requests]
                print(f"timed: {len(batch)} requests, {args.concurrency} keep-alive {mode} ...", file=sys.stderr)
                result = loadgen.run_load(
                    HOST,
                    port,
                    requests_for(batch, token, keep_alive=True),
                    label=f"{backend}, {mode}",
                    concurrency=args.concurrency,
                    keep_alive=True,
                    count=len(batch),
                    expect_status=201,
                    server_pids=lambda: [server.pid, *workers, *(database_pids(pg_url) if pg_url else [])],
                    sample_every=1,
                    max_samples=len(batch),
                    stagger=stagger,
                )
                if result.errors:
                    tail = log.read_text(errors="replace")[-3000:]
                    raise SystemExit(f"{result.error_count} requests failed: {dict(result.errors)}\n{tail}")
                checked += check_responses(batch, result)
                database = [pid for pid in result.server_cpu if pid != server.pid and pid not in workers]
                runs.append(Timed(result, workers, database))
            crypto_rates.append(time_crypto_only(url, home / "keys", crypto_csrs).rate)
            loadgen.stop(server)
            server = None
            check_database(home, url, port, total)
            return Outcome(backend, runs, checked, warmup_seconds, crypto_rates)
    finally:
        loadgen.stop(server)
        shutil.rmtree(tmp, ignore_errors=True)


def print_report(outcome: Outcome, args: argparse.Namespace) -> None:
    columns = ("certs", "seconds", "certs/s", "vs crypto", "p50 ms", "p99 ms")
    columns += ("worker CPU", "db CPU", "gen CPU", "other", "errors")
    crypto = sum(outcome.crypto_rates) / len(outcome.crypto_rates)
    print(f"{'run':<30} " + " ".join(f"{name:>10}" for name in columns))
    for timed in outcome.runs:
        result = timed.result
        workers = " + ".join(f"{result.server_cpu.get(pid, 0.0):.0%}" for pid in timed.workers)
        database = f"{timed.cpu(timed.database):.0%}" if outcome.backend == "PostgreSQL" else "in-proc"
        print(
            f"{result.label:<30} {result.completed:>10} {result.seconds:>10.2f} {result.rate:>10.0f} "
            f"{result.rate / crypto:>10.2f} {result.p50:>10.2f} {result.p99:>10.2f} {workers:>10} {database:>10} "
            f"{result.generator_cpu:>10.0%} "
            f"{result.other_cpu:>10.0%} {result.error_count:>10}"
        )
    print(
        f"\n{WORKERS} uvicorn workers and the load generator on {loadgen.cpu_count()} shared cores; {args.concurrency} "
        f"keep-alive connections per run ('one by one': opened {args.stagger * 1000:g} ms apart); P-256 CSRs made "
        f"beforehand; {args.warmup_requests} warm-up requests first ({outcome.warmup_seconds:.1f} s). "
        f"{outcome.checked} responses checked (201, identity, CN); database count and audit chain verified. "
        "CPU columns: share of one core (worker CPU per worker); other: used by other processes meanwhile. "
        f"Crypto only (one core, nothing stored, no HTTP), before and after the timed runs: "
        f"{', '.join(f'{rate:.0f}' for rate in outcome.crypto_rates)} certs/s."
    )
    print(f"\n{'aim':<44} {'target':>10} {'measured':>10} {'met':>5}")
    for timed in outcome.runs:
        rate = timed.result.rate
        name = f"certs/s over REST, {WORKERS} workers, {timed.result.label.split(', ', 1)[1]}"
        print(f"{name:<44} {f'>= {AIM_RATE:.0f}/s':>10} {f'{rate:.0f}/s':>10} {'yes' if rate >= AIM_RATE else 'NO':>5}")
        p99 = timed.result.p99
        name = f"p99 latency, {timed.result.label.split(', ', 1)[1]}"
        met = "yes" if p99 <= AIM_P99_MS else "NO"
        print(f"{name:<44} {f'<= {AIM_P99_MS:.0f} ms':>10} {f'{p99:.0f} ms':>10} {met:>5}")
    for timed in outcome.runs:
        result = timed.result
        shares = [result.server_cpu.get(pid, 0.0) for pid in timed.workers]
        if len(shares) >= 2 and min(shares) < 0.25 * max(shares):
            print(
                f"note: {result.label}: the workers' CPU was lopsided ({', '.join(f'{x:.0%}' for x in shares)}): "
                "one worker accepted (nearly) all the connections"
            )
        if result.other_cpu >= 0.2:
            print(
                f"note: {result.label}: other processes used {result.other_cpu:.0%} of a core meanwhile; "
                "the machine was not quiet, figures may be low"
            )


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--requests", type=int, default=3000, help="certificates issued in the timed run (3000)")
    parser.add_argument("--warmup-requests", type=int, default=200, help="untimed certificates issued first (200)")
    parser.add_argument("--concurrency", type=int, default=16, help="connections kept busy (default 16)")
    parser.add_argument(
        "--stagger", type=float, default=0.025, help="seconds between connections in the one-by-one run (0.025)"
    )
    parser.add_argument(
        "--database-url",
        help="a PostgreSQL server (postgresql+psycopg://...): the run uses a throw-away database created on it "
        "and dropped afterwards; default SQLite",
    )
    args = parser.parse_args(argv)
    if args.requests < 1 or args.concurrency < 1 or args.warmup_requests < WORKERS:
        parser.error(f"--requests and --concurrency must be positive, --warmup-requests at least {WORKERS}")
    print_report(run(args), args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
