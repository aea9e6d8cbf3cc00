"""Benchmark: ``evpki trust sync`` against an OPCP Root Certificate Pool listing N roots (default 200).

The pool is the test suite's fake RCP (``tests/fake_rcp.py``: a real HTTP server on 127.0.0.1, its
answers checked against the published OPCP schemas), filled with N self-signed P-256 roots made
with plain ``cryptography`` (V2G, MO and OEM in turn). Each sync is timed end to end as cron runs
it, the CLI in-process: the OAuth2 token, the listing over HTTP, every root checked (signature,
key, validity) and the one transaction. Rows: the first sync (N roots added, N audit records), a
no-change re-sync (nothing written), and a re-sync after the pool dropped a tenth of its roots.
Each row is the median of ``--runs`` fresh stores (SQLite by default; ``--database-url`` for
PostgreSQL, one fresh database per run).

    .venv/bin/python bench/trust_sync.py [--roots 200] [--runs 3] [--database-url postgresql+psycopg://...]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

# Runnable as a plain script from any directory: the repository root holds ``pki``, ``cli`` and ``tests``.
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url
from typer.testing import CliRunner

from cli.main import app
from pki import PKI, Settings
from tests.fake_rcp import FakeRcp, fake_rcp, opcp_reference
from tests.foreign_roots import foreign_root

PASSPHRASE = "evpki-bench-passphrase"
ROOT_TYPES = ("V2G", "MO", "OEM")


@contextmanager
def fresh_store(base_url: str | None) -> Iterator[tuple[Path, str]]:
    """An empty, migrated evpki database (the trust store needs no CA hierarchy)."""
    with tempfile.TemporaryDirectory(prefix="evpki-bench-sync-") as home:
        if base_url is None:
            url, name = f"sqlite:///{Path(home) / 'evpki.db'}", None
        else:
            name = f"evpki_bench_{uuid.uuid4().hex[:12]}"
            admin = create_engine(base_url, isolation_level="AUTOCOMMIT")
            with admin.connect() as connection:
                connection.execute(text(f'CREATE DATABASE "{name}"'))
            admin.dispose()
            url = make_url(base_url).set(database=name).render_as_string(hide_password=False)
        PKI.open(Settings(home=Path(home), database_url=url, key_passphrase=PASSPHRASE)).close()  # type: ignore[arg-type]
        try:
            yield Path(home), url
        finally:
            if name is not None:
                admin = create_engine(base_url, isolation_level="AUTOCOMMIT")  # type: ignore[arg-type]
                with admin.connect() as connection:
                    connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
                admin.dispose()


def timed_sync(pool: FakeRcp, secret: Path, home: Path, url: str) -> tuple[float, str]:
    env = {"EVPKI_HOME": str(home), "EVPKI_DATABASE_URL": url, "EVPKI_KEY_PASSPHRASE": PASSPHRASE}
    args = ["trust", "sync", "--rcp", pool.url, "--client-id", pool.client_id, "--client-secret-file", str(secret)]
    start = time.perf_counter()
    result = CliRunner().invoke(app, args, env=env)
    elapsed = time.perf_counter() - start
    if result.exit_code != 0:
        raise SystemExit(f"trust sync failed ({result.exit_code}): {result.stderr or result.stdout}")
    return elapsed, result.stdout.strip().splitlines()[-1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--roots", type=int, default=200)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--database-url", default=os.environ.get("EVPKI_BENCH_DATABASE_URL"))
    options = parser.parse_args()
    if opcp_reference() is None:
        raise SystemExit("the OPCP reference folder (rcp.v1.json) is absent; set EVPKI_OPCP_REFERENCE")

    made = time.perf_counter()
    roots = [foreign_root(f"Bench Root {n:04d}").certificate for n in range(options.roots)]
    made = time.perf_counter() - made
    timings: dict[str, list[float]] = {"first sync": [], "no-change re-sync": [], "re-sync, a tenth removed": []}
    summaries: dict[str, str] = {}
    with fake_rcp() as pool, tempfile.TemporaryDirectory() as scratch:
        secret = Path(scratch) / "secret"
        secret.write_text(pool.client_secret)
        secret.chmod(0o600)
        for _ in range(options.runs):
            pool.roots.clear()
            for n, root in enumerate(roots):
                pool.add(root, ROOT_TYPES[n % len(ROOT_TYPES)])
            with fresh_store(options.database_url) as (home, url):
                for label in ("first sync", "no-change re-sync"):
                    seconds, summaries[label] = timed_sync(pool, secret, home, url)
                    timings[label].append(seconds)
                del pool.roots[::10]
                label = "re-sync, a tenth removed"
                seconds, summaries[label] = timed_sync(pool, secret, home, url)
                timings[label].append(seconds)
        if pool.schema_errors:
            raise SystemExit(f"the fake pool broke the published schema: {pool.schema_errors[:3]}")

    database = "PostgreSQL" if options.database_url else "SQLite"
    print(f"trust sync against an RCP of {options.roots} roots, {database}, median of {options.runs} runs")
    print(f"(making the roots with cryptography, not timed: {made:.2f} s)")
    print()
    print(f"{'run':<26} {'seconds':>8}   result")
    for label, values in timings.items():
        print(f"{label:<26} {statistics.median(values):>8.3f}   {summaries[label]}")


if __name__ == "__main__":
    main()
