"""Benchmark: mass re-enrollment with ``evpki cert issue-batch`` -- certificates/s, interrupted and resumed.

A fresh PKI (SQLite by default; PostgreSQL with ``--database-url``, in a throw-away database) and a
directory of ``--count`` station CSRs (P-256, made beforehand by two processes: the stations' cost,
not ours). Then the real command, ``evpki cert issue-batch --csr-dir ... --out-dir ... --json``, as
an operator would run it after a sub-CA compromise, in two runs: the first is killed with SIGKILL
once ``--kill-at`` of the certificates have been written, the second resumes it. Afterwards the
database must hold exactly one station certificate per CSR (nothing issued twice, nothing lost),
every NAME.pem must be there, and the audit chain must verify. The crypto-only rate (checks and
signing, nothing stored, one core) is measured in the same run, before and after.

    .venv/bin/python bench/issue_batch.py                 # 10,000 CSRs, a quick run
    .venv/bin/python bench/issue_batch.py --count 100000  # the mass re-enrollment figure
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

from sqlalchemy import create_engine, func, select

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from issuance import ORGANIZATION, PASSPHRASE, make_csrs, time_crypto_only
from rest_issuance import scratch_database

from pki import PKI, Settings
from pki.store.models import CertificateRow

ROOT = Path(__file__).resolve().parents[1]


def _write_csrs(args: tuple[Path, int, int]) -> int:
    directory, job, count = args
    for station, pem in make_csrs(count, f"CP{job}-"):  # the CN is the station id (its serial, OCPP A00.FR.511)
        (directory / f"{station}.csr.pem").write_text(pem)
    return count


def write_csr_dir(directory: Path, count: int) -> list[tuple[str, str]]:
    """``count`` CSR files CPj-NNNNNNN.csr.pem whose CN is the station id; returns a sample for crypto-only."""
    directory.mkdir()
    workers = os.cpu_count() or 1
    share = -(-count // workers)
    jobs = [(directory, i, min(share, count - i * share)) for i in range(workers) if i * share < count]
    with multiprocessing.get_context("spawn").Pool(len(jobs)) as pool:
        pool.map(_write_csrs, jobs)
    sample = sorted(directory.iterdir())[:2000]
    return [(path.name.removesuffix(".csr.pem"), path.read_text()) for path in sample]


def _environment(home: Path, url: str) -> dict[str, str]:
    env = {key: value for key, value in os.environ.items() if not key.startswith("EVPKI_")}
    env.update(EVPKI_HOME=str(home), EVPKI_DATABASE_URL=url, EVPKI_KEY_PASSPHRASE=PASSPHRASE, PYTHONPATH=str(ROOT))
    return env


def _command(csr_dir: Path, out_dir: Path, chunk: int) -> list[str]:
    return [sys.executable, "-m", "cli.main", "cert", "issue-batch", "--csr-dir", str(csr_dir), "--out-dir",
            str(out_dir), "--chunk", str(chunk), "--json"]  # fmt: skip


def interrupted_run(csr_dir: Path, out_dir: Path, env: dict[str, str], chunk: int, kill_after: int) -> float:
    """Run the command until ``kill_after`` certificates are written, then SIGKILL it; returns its seconds."""
    process = subprocess.Popen(_command(csr_dir, out_dir, chunk), cwd=ROOT, env=env, stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL)  # fmt: skip
    start = time.perf_counter()
    while process.poll() is None:
        if out_dir.is_dir() and sum(1 for _ in out_dir.glob("*.pem")) >= kill_after:
            process.send_signal(signal.SIGKILL)
            break
        time.sleep(0.2)
    process.wait()
    return time.perf_counter() - start


def resumed_run(csr_dir: Path, out_dir: Path, env: dict[str, str], chunk: int) -> dict[str, object]:
    done = subprocess.run(_command(csr_dir, out_dir, chunk), cwd=ROOT, env=env, capture_output=True, text=True,
                          check=False)  # fmt: skip
    if done.returncode != 0:
        raise SystemExit(f"issue-batch failed ({done.returncode}): {done.stderr.strip()}")
    summary: dict[str, object] = json.loads(done.stdout)
    return summary


def check(home: Path, url: str, out_dir: Path, count: int) -> None:
    engine = create_engine(url)
    with engine.connect() as connection:
        table = CertificateRow.__table__  # type: ignore[attr-defined]
        stored = connection.execute(select(func.count()).where(table.c.profile == "station")).scalar_one()
        identities = connection.execute(
            select(func.count(func.distinct(table.c.identity))).where(table.c.profile == "station")
        ).scalar_one()
    engine.dispose()
    written = sum(1 for _ in out_dir.glob("*.pem"))
    if stored != count or identities != count or written != count:
        raise SystemExit(f"expected {count} certificates: {stored} stored ({identities} identities), {written} written")
    pki = PKI.open(Settings(home=home, database_url=url, key_passphrase=PASSPHRASE), migrate=False)  # type: ignore[arg-type]
    try:
        if not pki.audit.verify().ok:
            raise SystemExit("the audit chain does not verify")
    finally:
        pki.close()


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--count", type=int, default=10_000, help="CSRs to issue (10,000; 100,000 for the figure)")
    parser.add_argument("--chunk", type=int, default=500, help="CSRs per transaction (500)")
    parser.add_argument("--kill-at", type=float, default=0.3, help="share written when the first run is killed (0.3)")
    parser.add_argument("--database-url", help="a PostgreSQL server: a throw-away database on it; default SQLite")
    args = parser.parse_args(argv)
    if args.count < 10 or not 0 < args.kill_at < 1:
        parser.error("--count must be at least 10, --kill-at between 0 and 1")
    tmp = Path(tempfile.mkdtemp(prefix="evpki-bench-batch-"))
    try:
        with scratch_database(args.database_url) as pg_url:
            home = tmp / "home"
            url = pg_url or f"sqlite:///{home / 'evpki.db'}"
            backend = "PostgreSQL" if pg_url else "SQLite"
            settings = Settings(home=home, database_url=url, key_passphrase=PASSPHRASE)  # type: ignore[arg-type]
            pki = PKI.open(settings)
            pki.cas.init(organization=ORGANIZATION, actor="bench")
            pki.close()
            print(f"writing {args.count} P-256 CSRs (not timed) ...", file=sys.stderr)
            sample = write_csr_dir(tmp / "csrs", args.count)
            crypto = [time_crypto_only(url, home / "keys", sample).rate]
            env, out_dir = _environment(home, url), tmp / "out"
            kill_after = int(args.count * args.kill_at)
            print(f"run 1: issue-batch, SIGKILL after {kill_after} certificates ...", file=sys.stderr)
            first_seconds = interrupted_run(tmp / "csrs", out_dir, env, args.chunk, kill_after)
            first_written = sum(1 for _ in out_dir.glob("*.pem"))
            print("run 2: issue-batch resumes ...", file=sys.stderr)
            summary = resumed_run(tmp / "csrs", out_dir, env, args.chunk)
            crypto.append(time_crypto_only(url, home / "keys", sample).rate)
            check(home, url, out_dir, args.count)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    issued, seconds = int(summary["issued"]), float(summary["seconds"])  # type: ignore[call-overload]
    rate = float(summary["certificatesPerSecond"])  # type: ignore[arg-type]
    mean_crypto = sum(crypto) / len(crypto)
    cpus = os.cpu_count()
    print(f"{backend}: evpki cert issue-batch, {args.count} station CSRs, {args.chunk} per transaction, {cpus} CPUs")
    print(f"{'run':<34} {'certs':>8} {'seconds':>9} {'certs/s':>9} {'vs crypto':>10}")
    print(f"{'1: killed (SIGKILL) part-way':<34} {first_written:>8} {first_seconds:>9.1f} {'':>9} {'':>10}")
    print(f"{'2: resumed (skipped ' + str(summary['skipped']) + ')':<34} {issued:>8} {seconds:>9.1f} {rate:>9.0f} "
          f"{rate / mean_crypto:>10.2f}")  # fmt: skip
    print(
        f"crypto only (one core, nothing stored): {', '.join(f'{c:.0f}' for c in crypto)} certs/s (before, after). "
        f"Checked: {args.count} certificates stored once each, {args.count} files written, audit chain verified. "
        "Run 1's wall time includes starting the command and opening the PKI; run 2's rate is the command's own."
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
