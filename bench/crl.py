"""Benchmark: full CRL generation (``PKI.generate_crl``) for large numbers of revoked certificates.

For each size the parent fills a fresh copy of an initialised SQLite PKI with that many
revoked (or held) certificates of ``cso-sub`` by Core bulk inserts (dummy DER: the CRL only
reads serial, time and reason), then runs one child process that opens the PKI, decrypts the
CA key (not timed: a server holds it already), times ``generate_crl`` and reports its own
peak RSS, so every size is measured in a clean process.

    .venv/bin/python bench/crl.py [--sizes 100000,1000000]
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import json
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

from cryptography import x509
from sqlalchemy import create_engine, insert

# Runnable as a plain script from any directory: the repository root holds ``pki``.
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from pki import PKI, Settings
from pki.keys.file import FileKeyStore
from pki.revocation.reasons import RevocationReason
from pki.store import repository
from pki.store.db import Database
from pki.store.models import CertificateRow

ORGANIZATION = "Bench CSO GmbH"
PASSPHRASE = "evpki-bench-passphrase"
CA_ID = "cso-sub"
_BATCH = 20_000
# A plausible mix: most revocations say why, a few are holds, some give no reason.
_REASONS = (
    ("revoked", RevocationReason.KEY_COMPROMISE.value),
    ("revoked", RevocationReason.SUPERSEDED.value),
    ("revoked", RevocationReason.CESSATION_OF_OPERATION.value),
    ("revoked", RevocationReason.UNSPECIFIED.value),
    ("revoked", RevocationReason.AFFILIATION_CHANGED.value),
    ("on-hold", RevocationReason.CERTIFICATE_HOLD.value),
)


def settings_for(home: Path) -> Settings:
    return Settings(home=home, database_url=f"sqlite:///{home / 'evpki.db'}", key_passphrase=PASSPHRASE)  # type: ignore[arg-type]


def initialise(home: Path) -> None:
    pki = PKI.open(settings_for(home))
    try:
        pki.cas.init(organization=ORGANIZATION, actor="bench")
    finally:
        pki.close()


def populate(home: Path, count: int) -> float:
    """Insert ``count`` revoked certificates of ``CA_ID``; returns the seconds it took."""
    engine = create_engine(f"sqlite:///{home / 'evpki.db'}")
    table = CertificateRow.__table__  # type: ignore[attr-defined]
    start_time = dt.datetime(2025, 1, 1, tzinfo=dt.UTC)
    not_after = start_time + dt.timedelta(days=730)
    started = time.perf_counter()
    with engine.begin() as connection:
        for first in range(0, count, _BATCH):
            rows = []
            for i in range(first, min(first + _BATCH, count)):
                status, reason = _REASONS[i % len(_REASONS)]
                # 16-octet serials like real ones, ascending so that the indexes fill in order
                # (random keys would only make the untimed set-up slower).
                serial = format((1 << 126) + i * 0x9E3779B97F4A7C15, "X")
                rows.append(
                    {
                        "issuer_id": CA_ID,
                        "serial": serial,
                        "sha256": f"{i:064x}",
                        "profile": "station",
                        "subject": f"O={ORGANIZATION},CN=CS{i:08d}",
                        "identity": f"CS{i:08d}",
                        "station_serial": f"CS{i:08d}",
                        "not_before": start_time,
                        "not_after": not_after,
                        "der": b"\x30\x00",
                        "status": status,
                        "revoked_at": start_time + dt.timedelta(seconds=17 * i),
                        "revocation_reason": reason,
                        "created_at": start_time,
                    }
                )
            connection.execute(insert(table), rows)
    engine.dispose()
    return time.perf_counter() - started


def _reset_peak_rss() -> int:
    """Current RSS in KiB, after making it the new high-water mark where Linux allows that.

    ``ru_maxrss`` is not enough on its own: exec keeps the parent's high-water mark, so a small
    child would report the parent's peak. Writing 5 to ``clear_refs`` resets ``VmHWM``.
    """
    with contextlib.suppress(OSError):
        Path("/proc/self/clear_refs").write_text("5")
    return _proc_status_kib("VmRSS") or resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


def _peak_rss() -> int:
    return _proc_status_kib("VmHWM") or resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


def _proc_status_kib(field: str) -> int | None:
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith(f"{field}:"):
                return int(line.split()[1])
    except OSError:
        return None
    return None


def child(home: Path) -> None:
    """Runs in its own process: generate the CRL once and print seconds and peak RSS as JSON."""
    settings = settings_for(home)
    database = Database(settings.resolved_database_url)
    keys = FileKeyStore(settings.keys_dir, settings.passphrase())
    with database.read() as session:
        keys.load(repository.get_ca(session, CA_ID).key_id)  # the PBKDF2 unlock is a start-up cost
    pki = PKI(database=database, keys=keys, settings=settings)
    baseline_kib = _reset_peak_rss()
    started = time.perf_counter()
    view = pki.crls.generate(CA_ID)
    seconds = time.perf_counter() - started
    peak_kib = _peak_rss()
    crl = x509.load_der_x509_crl(view.der)
    pki.close()
    print(
        json.dumps(
            {
                "seconds": seconds,
                "peak_mib": peak_kib / 1024,
                "baseline_mib": baseline_kib / 1024,
                "entries": view.revoked_count,
                "parsed_entries": len(crl),
                "der_mib": len(view.der) / 2**20,
            }
        )
    )


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--sizes", default="100000,1000000", help="comma-separated entry counts")
    parser.add_argument("--child", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child is not None:
        child(args.child)
        return 0
    sizes = [int(size) for size in args.sizes.split(",") if size.strip()]
    results = []
    with tempfile.TemporaryDirectory(prefix="evpki-bench-crl-") as tmp:
        template = Path(tmp) / "template"
        initialise(template)
        for size in sizes:
            home = Path(tmp) / f"n{size}"
            shutil.copytree(template, home)
            fill = populate(home, size)
            print(f"{size} revoked rows inserted in {fill:.1f} s", file=sys.stderr)
            done = subprocess.run(
                [sys.executable, __file__, "--child", str(home)], capture_output=True, text=True, check=False
            )
            if done.returncode != 0:
                print(done.stderr, file=sys.stderr)
                raise SystemExit(f"CRL child for {size} entries failed")
            figures = json.loads(done.stdout.strip().splitlines()[-1])
            if figures["entries"] != size or figures["parsed_entries"] != size:
                raise SystemExit(f"CRL for {size} holds {figures['parsed_entries']} entries")
            results.append((size, figures))
            shutil.rmtree(home)
    print(f"{'entries':>9} {'seconds':>8} {'peak MiB':>9} {'RSS before':>11} {'CRL MiB':>8}")
    for size, figures in results:
        print(
            f"{size:>9} {figures['seconds']:>8.2f} {figures['peak_mib']:>9.0f} "
            f"{figures['baseline_mib']:>11.0f} {figures['der_mib']:>8.1f}"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
