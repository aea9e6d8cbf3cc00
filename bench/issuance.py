"""Benchmark: certificates issued per second from CSRs, in-process.

Three figures from one run: full issuance through :meth:`pki.PKI.issue` (CSR checks, signing,
the certificate row and its audit record in one transaction) on SQLite and on PostgreSQL, and
the crypto-only rate (CSR parse + proof-of-possession + policy + build + sign, no storage).
CSRs are generated before the clock starts: making them is the station's cost, not ours.

    .venv/bin/python bench/issuance.py [--n 2000] [--pg-url postgresql+psycopg://...]
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

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


@dataclass(frozen=True, slots=True)
class Result:
    name: str
    count: int
    seconds: float

    @property
    def rate(self) -> float:
        return self.count / self.seconds


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


def time_issuance(pki: PKI, csrs: Sequence[tuple[str, str]], name: str) -> Result:
    station, csr = csrs[0]
    pki.certificates.issue(
        profile="station", csr=csr, identity=RequestIdentity(station_id=station)
    )  # warm caches and keys
    start = time.perf_counter()
    for station, csr in csrs[1:]:
        pki.certificates.issue(profile="station", csr=csr, identity=RequestIdentity(station_id=station), actor="bench")
    elapsed = time.perf_counter() - start
    if not pki.audit.verify().ok:
        raise SystemExit(f"{name}: the audit chain does not verify after the run")
    return Result(name, len(csrs) - 1, elapsed)


def time_crypto_only(url: str, keys_dir: Path, csrs: Sequence[tuple[str, str]]) -> Result:
    """The same checks and signing as issuance, with the issuer loaded once and nothing stored."""
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
    start = time.perf_counter()
    for station, pem in csrs:
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
    return Result("crypto only (no storage)", len(csrs), time.perf_counter() - start)


def bench_sqlite(csrs: Sequence[tuple[str, str]]) -> tuple[Result, Result]:
    with tempfile.TemporaryDirectory(prefix="evpki-bench-") as tmp:
        home = Path(tmp)
        url = f"sqlite:///{home / 'evpki.db'}"
        pki = open_pki(home, url)
        try:
            issued = time_issuance(pki, csrs, "issue, SQLite (WAL)")
        finally:
            pki.close()
        crypto = time_crypto_only(url, home / "keys", csrs)
    return issued, crypto


def bench_postgres(csrs: Sequence[tuple[str, str]], admin_url: str) -> Result | None:
    admin = create_engine(admin_url, isolation_level="AUTOCOMMIT")
    name = f"evpki_bench_{uuid.uuid4().hex[:10]}"
    try:
        with admin.connect() as connection:
            connection.execute(text(f'CREATE DATABASE "{name}"'))
    except OperationalError as exc:
        reason = str(exc.orig).strip().splitlines()[0] if exc.orig else str(exc)
        print(f"note: PostgreSQL skipped ({reason})")
        admin.dispose()
        return None
    try:
        url = make_url(admin_url).set(database=name).render_as_string(hide_password=False)
        with tempfile.TemporaryDirectory(prefix="evpki-bench-") as tmp:
            pki = open_pki(Path(tmp), url)
            try:
                return time_issuance(pki, csrs, "issue, PostgreSQL")
            finally:
                pki.close()
    finally:
        with admin.connect() as connection:
            connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def print_table(results: Sequence[Result], crypto: Result) -> None:
    print(f"{'run':<28} {'certs':>7} {'seconds':>9} {'certs/s':>9} {'vs crypto':>10}")
    for result in (*results, crypto):
        ratio = result.rate / crypto.rate
        print(f"{result.name:<28} {result.count:>7} {result.seconds:>9.2f} {result.rate:>9.0f} {ratio:>10.2f}")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--n", type=int, default=2000, help="certificates per run (default 2000)")
    parser.add_argument(
        "--pg-url",
        default=os.environ.get("EVPKI_BENCH_PG_URL", DEFAULT_PG_URL),
        help="PostgreSQL server (a scratch database is created on it and dropped afterwards)",
    )
    parser.add_argument("--no-pg", action="store_true", help="skip PostgreSQL")
    args = parser.parse_args(argv)
    if args.n < 2:
        parser.error("--n must be at least 2")
    prepare: Callable[[str], list[tuple[str, str]]] = lambda prefix: make_csrs(args.n + 1, prefix)  # noqa: E731
    print(f"generating {2 * (args.n + 1)} P-256 CSRs (not timed) ...", file=sys.stderr)
    sqlite_csrs, pg_csrs = prepare("SQ"), prepare("PG")
    issued, crypto = bench_sqlite(sqlite_csrs)
    results = [issued]
    if not args.no_pg:
        pg = bench_postgres(pg_csrs, args.pg_url)
        if pg is not None:
            results.append(pg)
    print_table(results, crypto)
    return 0


if __name__ == "__main__":
    sys.exit(main())
