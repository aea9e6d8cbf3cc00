"""Benchmark: issuance/s on PostgreSQL with 1, 2 and 4 processes issuing at once, next to the crypto-only rate.

Each process opens its own :class:`pki.PKI` on one shared PostgreSQL database (the shape of
``evpki serve --workers N``), pre-generates its CSRs, issues one certificate to warm its caches,
waits for the others at a barrier and then issues ``--n`` station certificates through
:meth:`pki.PKI.certificates.issue` (checks, signing, certificate row and audit record committed)
from ``--threads`` threads at once, as a worker's thread pool does; ``--threads 1`` is the old
one-at-a-time loop. The rate is all certificates over the wall time from the first start to the
last finish (``time.monotonic`` is one clock for every process on Linux).

Every issuance appends to the one hash-chained audit log under the ``audit_head`` row lock. With
group commit (:mod:`pki.ca.group_commit`) a process takes that lock once per batch of what its
threads signed meanwhile, not once per certificate, so the lock stops being the ceiling. After
each round the audit chain is verified and serials are checked for duplicates. The crypto-only
rate (checks and signing, nothing stored, one process) is measured in the same run before and
after the rounds; with P processes on the machine's cores the crypto alone could reach at most
min(P, cores) times it, less what PostgreSQL itself needs.

    .venv/bin/python bench/pg_concurrency.py [--n 1000] [--threads 32] [--processes 1,2,4] [--pg-url ...]
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import sys
import tempfile
import threading
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import OperationalError

# Runnable as a plain script from any directory: the repository root holds ``pki``.
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.issuance import ORGANIZATION, PASSPHRASE, make_csrs, time_crypto_only
from pki import PKI, RequestIdentity, Settings

DEFAULT_PG_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
AIM_RATE_2_PROCESSES = 1500.0


@dataclass(frozen=True, slots=True)
class Round:
    processes: int
    count: int
    seconds: float
    per_process: tuple[float, ...]  # each process's own rate
    lock_waiting: float  # mean number of our backends waiting on a row lock while any was busy

    @property
    def rate(self) -> float:
        return self.count / self.seconds


def _settings(home: Path, url: str) -> Settings:
    return Settings(home=home, database_url=url, key_passphrase=PASSPHRASE)  # type: ignore[arg-type]


def _worker(index: int, prefix: str, n: int, threads: int, home: str, url: str, barrier: Any, results: Any) -> None:
    """Issue ``n`` certificates from ``threads`` threads after the barrier; put (count, start, end) or an error."""
    try:
        csrs = make_csrs(n + 1, f"{prefix}P{index}N")
        pki = PKI.open(_settings(Path(home), url), migrate=False)
        errors: list[BaseException] = []

        def issue_all(mine: list[tuple[str, str]]) -> None:
            try:
                for station, csr in mine:
                    pki.certificates.issue(
                        profile="station", csr=csr, identity=RequestIdentity(station_id=station), actor="bench"
                    )
            except BaseException as exc:
                errors.append(exc)

        try:
            issue_all(csrs[:1])
            callers = [threading.Thread(target=issue_all, args=(csrs[1 + i :: threads],)) for i in range(threads)]
            barrier.wait(timeout=120)
            start = time.monotonic()
            for caller in callers:
                caller.start()
            for caller in callers:
                caller.join()
            end = time.monotonic()
        finally:
            pki.close()
        if errors:
            raise errors[0]
        results.put((n, start, end))
    except BaseException as exc:
        results.put(f"worker {index}: {type(exc).__name__}: {exc}")


class LockSampler:
    """Samples ``pg_stat_activity`` of one database every few milliseconds: how many backends wait on locks."""

    _QUERY = text(
        "SELECT COUNT(*) FILTER (WHERE wait_event_type = 'Lock'), COUNT(*) FILTER (WHERE state = 'active') "
        "FROM pg_stat_activity WHERE datname = :db AND pid <> pg_backend_pid()"
    )

    def __init__(self, url: str) -> None:
        self._engine = create_engine(url)
        self._database = make_url(url).database
        self._stop = threading.Event()
        self._samples: list[int] = []
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        with self._engine.connect() as connection:
            while not self._stop.wait(0.005):
                waiting, active = connection.execute(self._QUERY, {"db": self._database}).one()
                connection.rollback()
                if active:
                    self._samples.append(waiting)

    def __enter__(self) -> LockSampler:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join()
        self._engine.dispose()

    @property
    def mean_waiting(self) -> float:
        return sum(self._samples) / len(self._samples) if self._samples else 0.0


def run_round(processes: int, n: int, threads: int, home: Path, url: str) -> Round:
    """One timed round of ``processes`` concurrent issuers, ``n`` certificates each."""
    context = multiprocessing.get_context("spawn")
    barrier = context.Barrier(processes)
    results = context.Queue()
    prefix = f"R{processes}{uuid.uuid4().hex[:4].upper()}"
    workers = [
        context.Process(target=_worker, args=(i, prefix, n, threads, str(home), url, barrier, results))
        for i in range(processes)
    ]
    with LockSampler(url) as sampler:
        for worker in workers:
            worker.start()
        reports = [results.get(timeout=900) for _ in workers]
    for worker in workers:
        worker.join()
    errors = [r for r in reports if isinstance(r, str)]
    if errors:
        raise SystemExit("\n".join(errors))
    first, last = min(r[1] for r in reports), max(r[2] for r in reports)
    rates = tuple(r[0] / (r[2] - r[1]) for r in reports)
    return Round(processes, sum(r[0] for r in reports), last - first, rates, sampler.mean_waiting)


def _check(pki: PKI, url: str) -> None:
    verification = pki.audit.verify()
    if not verification.ok:
        raise SystemExit(f"the audit chain does not verify: {verification}")
    engine = create_engine(url)
    with engine.connect() as connection:
        duplicates = connection.execute(
            text("SELECT COUNT(*) FROM (SELECT 1 FROM certificate GROUP BY issuer_id, serial HAVING COUNT(*) > 1) d")
        ).scalar_one()
    engine.dispose()
    if duplicates:
        raise SystemExit(f"{duplicates} duplicate serials")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, default=1000, help="certificates per process per round (1000)")
    parser.add_argument("--threads", type=int, default=32, help="concurrent callers per process (32; 1: one at a time)")
    parser.add_argument("--processes", default="1,2,4", help="comma-separated process counts")
    parser.add_argument("--pg-url", default=os.environ.get("EVPKI_TEST_DATABASE_URL", DEFAULT_PG_URL))
    args = parser.parse_args()
    counts = [int(p) for p in args.processes.split(",")]

    admin_url = make_url(args.pg_url).set(database="postgres")
    name = f"evpki_bench_{uuid.uuid4().hex[:10]}"
    admin = create_engine(admin_url, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as connection:
            connection.execute(text(f'CREATE DATABASE "{name}"'))
    except OperationalError as exc:
        raise SystemExit(f"PostgreSQL at {admin_url.render_as_string()} is not reachable: {exc.orig}") from None
    url = make_url(args.pg_url).set(database=name).render_as_string(hide_password=False)
    rounds: list[Round] = []
    crypto_rates: list[float] = []
    crypto_csrs = make_csrs(args.n, "CR")
    try:
        with tempfile.TemporaryDirectory(prefix="evpki-bench-pg-") as tmp:
            home = Path(tmp)
            pki = PKI.open(_settings(home, url))
            pki.cas.init(organization=ORGANIZATION, actor="bench")
            crypto_rates.append(time_crypto_only(url, home / "keys", crypto_csrs).rate)
            for processes in counts:
                rounds.append(run_round(processes, args.n, args.threads, home, url))
                _check(pki, url)
            crypto_rates.append(time_crypto_only(url, home / "keys", crypto_csrs).rate)
            pki.close()
    finally:
        with admin.connect() as connection:
            connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()

    base = rounds[0].rate
    crypto = sum(crypto_rates) / len(crypto_rates)
    cores = os.cpu_count() or 1
    print(f"Issuance on PostgreSQL, {args.n} certificates per process, {args.threads} threads each, {cores} CPUs")
    print(
        f"{'processes':>9}  {'certs':>6}  {'seconds':>8}  {'issued/s':>9}  {'vs first':>8}  {'vs crypto':>9}  "
        f"{'lock waiters':>12}  per process (/s)"
    )
    for r in rounds:
        each = ", ".join(f"{rate:.0f}" for rate in r.per_process)
        ceiling = crypto * min(r.processes, cores)
        print(
            f"{r.processes:>9}  {r.count:>6}  {r.seconds:>8.2f}  {r.rate:>9.1f}  {r.rate / base:>7.2f}x  "
            f"{r.rate / ceiling:>9.2f}  {r.lock_waiting:>12.2f}  {each}"
        )
    print(
        f"crypto only (one process, nothing stored): {', '.join(f'{c:.0f}' for c in crypto_rates)} certs/s "
        "(before and after the rounds); 'vs crypto' divides by it times min(processes, CPUs)"
    )
    print("lock waiters: mean number of the run's backends waiting on a row lock (audit_head) while any was busy")
    two = [r for r in rounds if r.processes == 2]
    if two:
        met = "yes" if two[0].rate >= AIM_RATE_2_PROCESSES else "NO"
        print(f"\naim: >= {AIM_RATE_2_PROCESSES:.0f}/s with 2 processes: {two[0].rate:.0f}/s  met: {met}")


if __name__ == "__main__":
    main()
