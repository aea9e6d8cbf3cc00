"""Benchmark: OPCP webhook fan-out -- N events to S subscribers over real HTTP, one subscriber down for half the run.

A fresh PKI (SQLite by default, ``--database-url`` for PostgreSQL) gets S CPO clients, each with a
webhook for ``root.cert.added`` pointing at a receiver on 127.0.0.1 (one asyncio HTTP server, a
path per subscriber). The events are real: N roots trusted in the trust store (one transaction and
audit record each), in two halves. While the first half is delivered, subscriber 0 answers 503;
then it comes back. The delivery loop of ``evpki serve`` (``api.opcp.deliver_once``: feed pump,
claim, signed POSTs with httpx, outcome recorded) runs until every delivery is delivered. The
backoff (30 s first) is waited out by moving the PKI's clock, not by sleeping: the figures are
processing time. Rows: the time to trust the roots, the fan-out of each half, and the retried
deliveries of the subscriber that was down.

    .venv/bin/python bench/opcp_webhooks.py [--events 1000] [--subscribers 20] [--database-url ...]
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import httpx
from cryptography.hazmat.primitives import serialization

from api.opcp import deliver_once
from pki import PKI, Settings
from pki.core import FixedClock
from pki.opcp import SubscriptionIn
from tests.foreign_roots import foreign_root

PASSPHRASE = "evpki-bench-passphrase"


class Receivers:
    def __init__(self) -> None:
        self.counts: dict[str, int] = {}
        self.down: set[str] = set()

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                lines = head.decode().split("\r\n")
                path = lines[0].split(" ")[1]
                length = next(int(line.split(":")[1]) for line in lines if line.lower().startswith("content-length"))
                await reader.readexactly(length)
                status = "503 Service Unavailable" if path in self.down else "200 OK"
                if path not in self.down:
                    self.counts[path] = self.counts.get(path, 0) + 1
                writer.write(f"HTTP/1.1 {status}\r\ncontent-length: 0\r\n\r\n".encode())
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            writer.close()


async def _drain(pki: PKI, client: httpx.AsyncClient) -> int:
    rounds = 0
    while await deliver_once(pki, client):
        rounds += 1
    return rounds


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=1000)
    parser.add_argument("--subscribers", type=int, default=20)
    parser.add_argument("--database-url", default=None)
    args = parser.parse_args()
    receivers = Receivers()
    server = await asyncio.start_server(receivers.handle, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    home = Path(tempfile.mkdtemp(prefix="evpki-bench-opcp-"))
    settings = Settings(home=home, database_url=args.database_url, key_passphrase=PASSPHRASE)  # type: ignore[arg-type]
    clock = FixedClock(dt.datetime.now(dt.UTC))
    pki = PKI.open(settings, clock=clock)
    pki.cas.init(organization="Bench", actor="bench")
    for n in range(args.subscribers):
        view, secret = pki.opcp.add_client(name=f"cpo-{n}", role="cpo")
        principal = pki.opcp.authenticate(
            pki.opcp.issue_token(
                client_id=view.client_id, client_secret=secret, audience=pki.opcp.audience
            ).access_token
        )
        pki.opcp.webhooks.create(
            principal, SubscriptionIn(url=f"http://127.0.0.1:{port}/s{n}", enabled_events=("root.cert.added",))
        )
    roots = [
        foreign_root(f"Bench Root {n}").certificate.public_bytes(serialization.Encoding.DER) for n in range(args.events)
    ]
    half = args.events // 2
    rows: list[tuple[str, float, str]] = []
    receivers.down.add("/s0")
    limits = httpx.Limits(max_connections=50, max_keepalive_connections=50)
    async with httpx.AsyncClient(timeout=10.0, limits=limits) as client:
        started = time.perf_counter()
        for der in roots[:half]:
            pki.trust.add(der, use="MORootCertificate")
        rows.append((f"trust {half} roots (events)", time.perf_counter() - started, ""))
        started = time.perf_counter()
        await _drain(pki, client)
        first = time.perf_counter() - started
        rows.append(("fan-out 1st half, s0 down", first, f"{half * (args.subscribers - 1) / first:,.0f} deliveries/s"))
        receivers.down.clear()
        for der in roots[half:]:
            pki.trust.add(der, use="MORootCertificate")
        started = time.perf_counter()
        await _drain(pki, client)
        second = time.perf_counter() - started
        rows.append(
            (
                "fan-out 2nd half, s0 back",
                second,
                f"{(args.events - half) * args.subscribers / second:,.0f} deliveries/s",
            )
        )
        started = time.perf_counter()
        while receivers.counts.get("/s0", 0) < args.events:
            clock.advance(dt.timedelta(minutes=2))  # past the backoff, instead of waiting for it
            await _drain(pki, client)
        rows.append((f"s0's {half} retried deliveries", time.perf_counter() - started, "after it came back"))
    delivered = sum(receivers.counts.values())
    assert delivered == args.events * args.subscribers, (delivered, receivers.counts)
    pki.close()
    server.close()
    kind = settings.resolved_database_url.split(":")[0]
    print(f"OPCP webhook fan-out: {args.events} events x {args.subscribers} subscribers ({kind})")
    print(f"{'step':<36} {'seconds':>8}  note")
    for step, seconds, note in rows:
        print(f"{step:<36} {seconds:>8.2f}  {note}")
    print(f"{'all delivered':<36} {delivered:>8}  deliveries, each exactly once")


if __name__ == "__main__":
    asyncio.run(main())
