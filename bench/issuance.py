"""Benchmark: certificates issued per second from CSRs, in-process, next to the crypto-only rate.

Per database (SQLite, then PostgreSQL), three ways of issuing, every one persisted and audited
(CSR checks, signing, the certificate row and its audit record committed):

- ``1 caller``: one thread calling :meth:`pki.PKI.certificates.issue` in a loop (each issuance
  its own transaction: nobody to share one with);
- ``N callers``: ``--threads`` threads calling it at once, as the REST workers' thread pool or the
  bridge's station threads do: the group commit (:mod:`pki.ca.group_commit`) stores what they
  signed together, one transaction and one audit-head update per batch;
- ``bulk``: :meth:`pki.PKI.certificates.issue_batch` with ``--chunk`` requests per call.

and the crypto-only rate (CSR parse + proof-of-possession + policy + build + sign, no storage),
measured in the same run, between the others, so that load from other processes hits both; the
"vs crypto" column divides by it. CPU per certificate (all of the process's threads) is shown too,
since wall-clock rates on a shared machine move with whatever else runs. CSRs are generated
before the clock starts: making them is the station's cost, not ours. The audit chain is verified
after each database's runs.

    .venv/bin/python bench/issuance.py [--n 2000] [--threads 32] [--chunk 500] [--pg-url postgresql+psycopg://...]
"""

from __future__ import annotations

import argparse
import contextlib
import itertools
import os
import statistics
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import OperationalError

# Runnable as a plain script from any directory: the repository root holds ``pki``.
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from pki import PKI, RequestIdentity, Settings
from pki.ca import CertificateRequest, group_commit
from pki.ca.authority import IssuerContext, build_certificate, fingerprint, new_serial, validity_window
from pki.ca.policy import check_request, load_csr
from pki.ca.profiles import get_profile
from pki.keys.file import FileKeyStore
from pki.store import repository
from pki.store.db import Database

ORGANIZATION = "Bench CSO GmbH"
PASSPHRASE = "evpki-bench-passphrase"
ISSUING_CA = "cso-sub"
DEFAULT_PG_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
AIM_SQLITE_RATE = 2500.0
AIM_VS_CRYPTO = 0.6


@dataclass(frozen=True, slots=True)
class Result:
    name: str
    count: int
    seconds: float
    cpu_seconds: float = 0.0

    @property
    def rate(self) -> float:
        return self.count / self.seconds

    @property
    def cpu_us(self) -> float:
        return self.cpu_seconds / self.count * 1e6


def make_csrs(n: int, prefix: str) -> list[tuple[str, str]]:
    """(station id, PEM CSR) pairs; the CN is the station serial (OCPP A00.FR.511)."""
    out = []
    for i in range(n):
        station = f"{prefix}{i:07d}"
        key = ec.generate_private_key(ec.SECP256R1())
        name = x509.Name(
            [
                x509.NameAttribute(NameOID.ORGANIZATION_NAME, ORGANIZATION),
                x509.NameAttribute(NameOID.COMMON_NAME, station),
            ]
        )
        csr = x509.CertificateSigningRequestBuilder().subject_name(name).sign(key, hashes.SHA256())
        out.append((station, csr.public_bytes(serialization.Encoding.PEM).decode()))
    return out


def open_pki(home: Path, url: str) -> PKI:
    settings = Settings(home=home, database_url=url, key_passphrase=PASSPHRASE)  # type: ignore[arg-type]
    pki = PKI.open(settings)
    pki.cas.init(organization=ORGANIZATION, actor="bench")
    return pki


def warm_up(pki: PKI, csrs: Sequence[tuple[str, str]]) -> None:
    station, csr = csrs[0]
    pki.certificates.issue(profile="station", csr=csr, identity=RequestIdentity(station_id=station), actor="bench")


def time_sequential(pki: PKI, csrs: Sequence[tuple[str, str]], name: str) -> Result:
    cpu, start = time.process_time(), time.perf_counter()
    for station, csr in csrs:
        pki.certificates.issue(profile="station", csr=csr, identity=RequestIdentity(station_id=station), actor="bench")
    return Result(name, len(csrs), time.perf_counter() - start, time.process_time() - cpu)


def time_concurrent(pki: PKI, csrs: Sequence[tuple[str, str]], threads: int, name: str) -> Result:
    """``threads`` callers issuing at once, each its share of ``csrs``."""
    errors: list[BaseException] = []
    barrier = threading.Barrier(threads + 1)

    def caller(mine: Sequence[tuple[str, str]]) -> None:
        barrier.wait()
        try:
            for station, csr in mine:
                pki.certificates.issue(
                    profile="station", csr=csr, identity=RequestIdentity(station_id=station), actor="bench"
                )
        except BaseException as exc:
            errors.append(exc)

    workers = [threading.Thread(target=caller, args=(csrs[i::threads],)) for i in range(threads)]
    for worker in workers:
        worker.start()
    with _batches_recorded() as batches:
        barrier.wait()
        cpu, start = time.process_time(), time.perf_counter()
        for worker in workers:
            worker.join()
        elapsed, cpu_used = time.perf_counter() - start, time.process_time() - cpu
    if errors:
        raise SystemExit(f"{name}: {type(errors[0]).__name__}: {errors[0]}")
    _print_batches(name, batches, elapsed)
    return Result(name, len(csrs), elapsed, cpu_used)


@contextlib.contextmanager
def _batches_recorded() -> Iterator[list[tuple[int, float, float]]]:
    """(size, start, seconds) of every batch the group commit stores meanwhile."""
    batches: list[tuple[int, float, float]] = []
    store = group_commit.GroupCommit._store

    def recording(batch: list[Any]) -> None:
        began = time.perf_counter()
        try:
            store(batch)
        finally:
            batches.append((len(batch), began, time.perf_counter() - began))

    group_commit.GroupCommit._store = staticmethod(recording)  # type: ignore[method-assign]
    try:
        yield batches
    finally:
        group_commit.GroupCommit._store = staticmethod(store)  # type: ignore[method-assign]


def _print_batches(name: str, batches: Sequence[tuple[int, float, float]], elapsed: float) -> None:
    """Where a group-commit run's time goes: storing batches, and the gaps between them (signing)."""
    if len(batches) < 2:
        return
    sizes = sorted(size for size, _, _ in batches)
    storing = sum(seconds for _, _, seconds in batches)
    gaps = [later[1] - (earlier[1] + earlier[2]) for earlier, later in itertools.pairwise(batches)]
    print(
        f"  {name}: {len(batches)} batches, size median {sizes[len(sizes) // 2]} (p10 {sizes[len(sizes) // 10]}), "
        f"storing {1000 * storing / len(batches):.1f} ms per batch ({storing / elapsed:.0%} of the run), "
        f"{1000 * statistics.mean(gaps):.1f} ms from one batch to the next (the callers sign meanwhile)",
        flush=True,
    )


def time_bulk(pki: PKI, csrs: Sequence[tuple[str, str]], chunk: int, name: str) -> Result:
    requests = [CertificateRequest("station", csr, RequestIdentity(station_id=station)) for station, csr in csrs]
    cpu, start = time.process_time(), time.perf_counter()
    for offset in range(0, len(requests), chunk):
        for outcome in pki.certificates.issue_batch(requests[offset : offset + chunk], actor="bench"):
            if isinstance(outcome, Exception):
                raise SystemExit(f"{name}: refused: {outcome}")
    return Result(name, len(csrs), time.perf_counter() - start, time.process_time() - cpu)


def check_audit(pki: PKI, label: str) -> None:
    if not pki.audit.verify().ok:
        raise SystemExit(f"{label}: the audit chain does not verify after the run")


def time_crypto_only(url: str, keys_dir: Path, csrs: Sequence[tuple[str, str]], threads: int = 1) -> Result:
    """The same checks and signing as issuance, with the issuer loaded once and nothing stored.

    With ``threads`` > 1 the CSRs are shared among that many threads: what signing alone gives when
    callers are threads of one process, whose GIL hand-overs cost before any storing does.
    """
    database = Database(url)
    with database.read() as session:
        ca = repository.get_ca(session, ISSUING_CA)
        organization = repository.get_setting(session, "cso_organization") or ORGANIZATION
    database.dispose()
    issuer = IssuerContext(
        ca_id=ca.id,
        signer=FileKeyStore(keys_dir, PASSPHRASE.encode()).load(ca.key_id),
        certificate=x509.load_der_x509_certificate(ca.der),
        rsa_pss=ca.rsa_pss,
    )
    profile = get_profile("station")

    def sign_all(mine: Sequence[tuple[str, str]]) -> None:
        for station, pem in mine:
            approved = check_request(
                load_csr(pem),
                profile,
                standard=ca.standard,
                organization=organization,
                identity=RequestIdentity(station_id=station),
            )
            not_before, not_after = validity_window(
                issuer.certificate.not_valid_before_utc, profile.default_validity, issuer.certificate
            )
            certificate = build_certificate(
                issuer=issuer,
                subject=approved.subject,
                public_key=approved.public_key,
                profile=profile,
                serial=new_serial(),
                not_before=not_before,
                not_after=not_after,
                public_url="http://127.0.0.1:8080",
            )
            fingerprint(certificate)

    workers = (
        [threading.Thread(target=sign_all, args=(csrs[i::threads],)) for i in range(threads)] if threads > 1 else []
    )
    cpu, start = time.process_time(), time.perf_counter()
    if not workers:
        sign_all(csrs)  # the one-core baseline: no thread hand-over at all
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    name = "crypto only (no storage)" if threads == 1 else f"crypto only, {threads} threads"
    return Result(name, len(csrs), time.perf_counter() - start, time.process_time() - cpu)


@dataclass(frozen=True, slots=True)
class Plan:
    n: int
    threads: int
    chunk: int


def run_all(pki: PKI, url: str, keys_dir: Path, csrs: Sequence[tuple[str, str]], plan: Plan, db: str) -> list[Result]:
    """The three persisted runs on ``pki``, each followed by a crypto-only run on the same CSRs' kind."""
    warm_up(pki, csrs[:1])
    parts = [csrs[1 + i * plan.n : 1 + (i + 1) * plan.n] for i in range(3)]
    crypto_csrs = make_csrs(plan.n, "CR")
    results = [time_crypto_only(url, keys_dir, crypto_csrs)]
    results.append(time_sequential(pki, parts[0], f"{db}, 1 caller"))
    results.append(time_crypto_only(url, keys_dir, crypto_csrs))
    results.append(time_concurrent(pki, parts[1], plan.threads, f"{db}, {plan.threads} callers"))
    threaded = time_crypto_only(url, keys_dir, crypto_csrs, plan.threads)
    print(
        f"  {db}: crypto only in {plan.threads} threads (the callers' own ceiling): {threaded.rate:.0f} certs/s, "
        f"{threaded.cpu_us:.0f} µs CPU each; the {plan.threads} callers reached "
        f"{results[-1].rate / threaded.rate:.2f} of it",
        flush=True,
    )
    results.append(time_crypto_only(url, keys_dir, crypto_csrs))
    results.append(time_bulk(pki, parts[2], plan.chunk, f"{db}, bulk ({plan.chunk}/call)"))
    results.append(time_crypto_only(url, keys_dir, crypto_csrs))
    check_audit(pki, db)
    return results


def bench_sqlite(csrs: Sequence[tuple[str, str]], plan: Plan) -> list[Result]:
    with tempfile.TemporaryDirectory(prefix="evpki-bench-") as tmp:
        home = Path(tmp)
        url = f"sqlite:///{home / 'evpki.db'}"
        pki = open_pki(home, url)
        try:
            return run_all(pki, url, home / "keys", csrs, plan, "SQLite")
        finally:
            pki.close()


def bench_postgres(csrs: Sequence[tuple[str, str]], admin_url: str, plan: Plan) -> list[Result]:
    admin = create_engine(admin_url, isolation_level="AUTOCOMMIT")
    name = f"evpki_bench_{uuid.uuid4().hex[:10]}"
    try:
        with admin.connect() as connection:
            connection.execute(text(f'CREATE DATABASE "{name}"'))
    except OperationalError as exc:
        reason = str(exc.orig).strip().splitlines()[0] if exc.orig else str(exc)
        print(f"note: PostgreSQL skipped ({reason})")
        admin.dispose()
        return []
    try:
        url = make_url(admin_url).set(database=name).render_as_string(hide_password=False)
        with tempfile.TemporaryDirectory(prefix="evpki-bench-") as tmp:
            pki = open_pki(Path(tmp), url)
            try:
                return run_all(pki, url, Path(tmp) / "keys", csrs, plan, "PostgreSQL")
            finally:
                pki.close()
    finally:
        with admin.connect() as connection:
            connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def print_table(results: Sequence[Result]) -> None:
    """Each persisted run next to the mean of the crypto-only runs just before and after it.

    "vs crypto" divides the rates (the aim); "CPU ratio" divides crypto-only CPU per certificate by
    the run's, which moves less with other processes' load (it ignores idle waiting).
    """
    header = ("certs", "seconds", "certs/s", "CPU us/cert", "crypto/s", "crypto CPU us", "vs crypto", "CPU ratio")
    print(f"{'run':<30} " + " ".join(f"{name:>13}" for name in header))
    aims: list[tuple[str, str, str, bool]] = []
    for index, result in enumerate(results):
        if result.name.startswith("crypto"):
            continue
        around = (results[index - 1], results[index + 1])
        crypto = sum(r.rate for r in around) / 2
        crypto_cpu = sum(r.cpu_us for r in around) / 2
        ratio = result.rate / crypto
        cells = (
            f"{result.count}",
            f"{result.seconds:.2f}",
            f"{result.rate:.0f}",
            f"{result.cpu_us:.0f}",
            f"{crypto:.0f}",
            f"{crypto_cpu:.0f}",
            f"{ratio:.2f}",
            f"{crypto_cpu / result.cpu_us:.2f}",
        )
        print(f"{result.name:<30} " + " ".join(f"{cell:>13}" for cell in cells))
        if result.name.startswith("SQLite") and "1 caller" not in result.name:
            rate_met, ratio_met = result.rate >= AIM_SQLITE_RATE, ratio >= AIM_VS_CRYPTO
            aims.append((f"{result.name}: certs/s", f">= {AIM_SQLITE_RATE:.0f}", f"{result.rate:.0f}", rate_met))
            aims.append((f"{result.name}: vs crypto", f">= {AIM_VS_CRYPTO}", f"{ratio:.2f}", ratio_met))
    cryptos = [r for r in results if r.name.startswith("crypto")]
    each = ", ".join(f"{r.rate:.0f}" for r in cryptos)
    print(f"crypto only (no storage), {len(cryptos)} runs between the others: {each} certs/s")
    print(f"\n{'aim':<46} {'target':>8} {'measured':>9} {'met':>4}")
    for name, target, measured, met in aims:
        print(f"{name:<46} {target:>8} {measured:>9} {'yes' if met else 'NO':>4}")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--n", type=int, default=2000, help="certificates per run (default 2000)")
    parser.add_argument("--threads", type=int, default=32, help="concurrent callers in the group-commit run (32)")
    parser.add_argument("--chunk", type=int, default=500, help="requests per issue_batch call in the bulk run (500)")
    parser.add_argument(
        "--pg-url",
        default=os.environ.get("EVPKI_BENCH_PG_URL", DEFAULT_PG_URL),
        help="PostgreSQL server (a scratch database is created on it and dropped afterwards)",
    )
    parser.add_argument("--no-pg", action="store_true", help="skip PostgreSQL")
    args = parser.parse_args(argv)
    if args.n < 2 or args.threads < 1 or not 1 <= args.chunk <= 1000:
        parser.error("--n must be at least 2, --threads positive, --chunk 1..1000")
    plan = Plan(args.n, args.threads, args.chunk)
    prepare: Callable[[str], list[tuple[str, str]]] = lambda prefix: make_csrs(3 * args.n + 1, prefix)  # noqa: E731
    print(f"generating {(2 - args.no_pg) * (3 * args.n + 1) + args.n} P-256 CSRs (not timed) ...", file=sys.stderr)
    results = bench_sqlite(prepare("SQ"), plan)
    if not args.no_pg:
        results += bench_postgres(prepare("PG"), args.pg_url, plan)
    print(f"{os.cpu_count()} CPUs; {plan.threads} callers in the concurrent runs; every run persisted and audited")
    print_table(results)
    return 0


if __name__ == "__main__":
    sys.exit(main())
