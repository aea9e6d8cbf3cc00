"""Benchmark: operator calls fanned out to connected stations across several bridge processes.

``--stations`` registered stations (each with its own station certificate) connect over mutual TLS
(OCPP 2.0.1) to ``--bridges`` ``evpki bridge`` processes on one database, split between them as a
TCP load balancer would. Then, as an API process would, this script files

1. one InstallCertificate (our CSMS root) per station: seconds from the first call filed until
   every station's answer is recorded;
2. one UpdateFirmware per station (``--firmware-stations``; signed once per call, as the API does):
   each station accepts it and reports Downloading, Downloaded, SignatureVerified, Installing,
   Installed: seconds until every notification is recorded;
3. ``--probes`` single calls, one after another (a random pause between them, so that they fall
   anywhere in a poll period), to each of two more stations: one on the first bridge process (it hears
   of new calls by PostgreSQL NOTIFY; on SQLite it looks after every commit), one on an extra bridge
   process started with ``--no-call-notifications`` (it queries every ``--call-poll-interval``).
   p50 / p99 / max of filing → the CALL received by the station (the station's clock: same machine),
   and p50 of filing → the answer recorded.

The stations are played by ``--client-processes`` processes of raw WebSocket clients.

    .venv/bin/python bench/operator_calls.py [--stations 5000] [--bridges 2] [--firmware-stations 1000]
        [--database-url postgresql+psycopg://postgres@127.0.0.1:5432/bench]   # default: SQLite
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing
import os
import random
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from bridge import PASSPHRASE, ROOT, _free_port, _raise_file_limit, connect_station, prepare

from pki import PKI, Settings

_HANDSHAKES = 16  # concurrent TLS handshakes per load-generator process
FIRMWARE_STATUSES = ("Downloading", "Downloaded", "SignatureVerified", "Installing", "Installed")


async def _station(
    url: str,
    ca_file: Path,
    identity: str,
    pem: Path,
    ready: object,
    received: object | None,
    handshakes: asyncio.Semaphore,
) -> None:
    try:
        async with handshakes:  # a few handshakes at a time, as stations coming back after an outage would
            connection = await connect_station(url, ca_file, identity, pem, open_timeout=300)
    except Exception as exc:
        print(f"  {identity} did not connect: {exc!r}", flush=True)
        ready.put(0)  # type: ignore[attr-defined]
        return
    ready.put(1)  # type: ignore[attr-defined]
    waiting: dict[str, asyncio.Future[object]] = {}

    async def notify(request_id: int) -> None:
        for status in FIRMWARE_STATUSES:
            message_id = uuid.uuid4().hex
            future: asyncio.Future[object] = asyncio.get_running_loop().create_future()
            waiting[message_id] = future
            payload = {"status": status, "requestId": request_id}
            await connection.send(json.dumps([2, message_id, "FirmwareStatusNotification", payload]))
            await asyncio.wait_for(future, 120)

    tasks = set()
    try:
        async for raw in connection:
            message = json.loads(raw)
            if message[0] == 3 and message[1] in waiting:
                waiting.pop(message[1]).set_result(message[2])
            elif message[0] == 2 and message[2] in ("InstallCertificate", "UpdateFirmware"):
                if received is not None:
                    received.put((identity, time.time()))  # type: ignore[attr-defined]
                await connection.send(json.dumps([3, message[1], {"status": "Accepted"}]))
                if message[2] == "UpdateFirmware":
                    task = asyncio.create_task(notify(message[3]["requestId"]))
                    tasks.add(task)
                    task.add_done_callback(tasks.discard)
            elif message[0] == 2:
                await connection.send(json.dumps([4, message[1], "NotImplemented", "bench", {}]))
    except Exception:  # the bench is over: the bridge closed the connection
        return


def _client_process(
    url_of: dict[str, str],
    ca_file: Path,
    stations: list[tuple[str, Path]],
    ready: object,
    probes: frozenset[str],
    probe_queue: object,
) -> None:
    _raise_file_limit()

    async def run() -> None:
        handshakes = asyncio.Semaphore(_HANDSHAKES)
        received = {identity: probe_queue for identity in probes}
        await asyncio.gather(
            *(
                _station(url_of[identity], ca_file, identity, pem, ready, received.get(identity), handshakes)
                for identity, pem in stations
            )
        )

    asyncio.run(run())


def _start_bridge(
    home: Path, database_url: str, port: int, poll: float, *, notifications: bool = True
) -> subprocess.Popen[bytes]:
    env = {
        **os.environ,
        "EVPKI_HOME": str(home),
        "EVPKI_KEY_PASSPHRASE": PASSPHRASE,
        "EVPKI_DATABASE_URL": database_url,
    }
    env["EVPKI_OCPP_ROOT_SYNC"] = "false"
    command = [sys.executable, "-m", "cli.main", "bridge", "--host", "127.0.0.1", "--port", str(port)]
    command += ["--basic-port", "0", "--call-poll-interval", str(poll), "--server-cert-dir", str(home / f"b{port}")]
    command += ["--log-level", "warning", "--call-notifications" if notifications else "--no-call-notifications"]
    return subprocess.Popen(
        command, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=(home / f"bridge-{port}.log").open("wb")
    )


def _wait_port(port: int) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            time.sleep(0.2)
    raise SystemExit(f"bridge on port {port} did not start")


def _count(pki: PKI, sql: str, ids: list[int]) -> int:
    from sqlalchemy import text

    with pki._ctx.database.read() as session:
        return int(session.execute(text(sql), {"low": min(ids), "high": max(ids)}).scalar_one())


def _until(predicate: object, timeout: float = 1800) -> float:
    start = time.perf_counter()
    while not predicate():  # type: ignore[operator]
        if time.perf_counter() - start > timeout:
            raise SystemExit("timed out")
        time.sleep(0.05)
    return time.perf_counter() - start


def _ms(ordered: list[float], q: float) -> str:
    return f"{ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))] * 1000:.0f}"


def _probe(pki: PKI, received: object, identity: str, count: int, poll: float) -> tuple[list[float], list[float]]:
    """Latencies (s) of ``count`` calls to ``identity``: filing → station received, filing → answer recorded."""
    to_station, to_answer = [], []
    for _ in range(count):
        time.sleep(random.uniform(0, poll))  # anywhere in a poll period
        while not received.empty():  # type: ignore[attr-defined]
            received.get()  # type: ignore[attr-defined]
        wall, start = time.time(), time.perf_counter()
        call = pki.station_calls.install_certificate(identity, use="CSMSRootCertificate")
        who, at = received.get(timeout=60)  # type: ignore[attr-defined]
        assert who == identity
        to_station.append(at - wall)
        while pki.station_calls.get(identity, call.id).status == "pending":
            time.sleep(0.002)
        to_answer.append(time.perf_counter() - start)
    return sorted(to_station), sorted(to_answer)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--stations", type=int, default=5000)
    parser.add_argument("--bridges", type=int, default=2)
    parser.add_argument("--client-processes", type=int, default=2)
    parser.add_argument("--firmware-stations", type=int, default=1000)
    parser.add_argument("--probes", type=int, default=100)
    parser.add_argument("--call-poll-interval", type=float, default=0.5)
    parser.add_argument("--database-url", default=None)
    args = parser.parse_args()
    _raise_file_limit()
    with tempfile.TemporaryDirectory(prefix="evpki-bench-calls-") as directory:
        home = Path(directory)
        database_url = args.database_url or f"sqlite:///{home / 'evpki.db'}"
        os.environ["EVPKI_DATABASE_URL"] = database_url
        print(f"preparing {args.stations} + 2 stations with certificates …", flush=True)
        ca_file, everyone = prepare(home, args.stations + 2)
        stations, (notified_probe, polled_probe) = everyone[: args.stations], everyone[args.stations :]
        ports = [_free_port() for _ in range(args.bridges)]
        poll_port = _free_port()
        bridges = [_start_bridge(home, database_url, port, args.call_poll_interval) for port in ports]
        bridges.append(_start_bridge(home, database_url, poll_port, args.call_poll_interval, notifications=False))
        pki = PKI.open(Settings(home=home, key_passphrase=PASSPHRASE, database_url=database_url))  # type: ignore[arg-type]
        try:
            for port in [*ports, poll_port]:
                _wait_port(port)
            url_of = {identity: f"wss://127.0.0.1:{ports[i % len(ports)]}" for i, (identity, _) in enumerate(stations)}
            url_of[notified_probe[0]] = f"wss://127.0.0.1:{ports[0]}"
            url_of[polled_probe[0]] = f"wss://127.0.0.1:{poll_port}"
            context = multiprocessing.get_context("spawn")
            ready, received = context.Queue(), context.Queue()
            probes = frozenset({notified_probe[0], polled_probe[0]})
            share = [everyone[i :: args.client_processes] for i in range(args.client_processes)]
            clients = [
                context.Process(target=_client_process, args=(url_of, ca_file, part, ready, probes, received))
                for part in share
            ]
            start = time.perf_counter()
            for client in clients:
                client.start()
            held = sum(ready.get(timeout=1800) for _ in everyone)
            if held < len(everyone):
                raise SystemExit(f"only {held} of {len(everyone)} stations connected")
            connected = time.perf_counter() - start
            identities = [identity for identity, _ in stations]
            for identity, _ in everyone:
                pki.stations.record_connection(identity, "2.0.1")
            print(
                f"{len(stations)} stations connected to {args.bridges} bridge processes in {connected:.1f} s "
                f"(+2 probe stations)",
                flush=True,
            )
            rows: list[tuple[str, str]] = []

            start = time.perf_counter()
            ids = [pki.station_calls.install_certificate(i, use="CSMSRootCertificate").id for i in identities]
            filed = time.perf_counter() - start
            answered = "SELECT count(*) FROM ocpp_delivery WHERE id BETWEEN :low AND :high AND status <> 'pending'"
            _until(lambda: _count(pki, answered, ids) == len(ids))
            total = time.perf_counter() - start
            rows.append(
                (
                    f"InstallCertificate to {len(ids)} stations, {args.bridges} bridge processes, all answered",
                    f"{total:.2f} s (filing {filed:.2f} s; the last answer {total - filed:.2f} s after the last call)",
                )
            )
            print(rows[-1], flush=True)

            targets = identities[: args.firmware_stations]
            firmware = os.urandom(64 * 1024)
            start = time.perf_counter()
            ids = [
                pki.station_calls.update_firmware(i, [firmware], location="https://fw.example.com/fw.bin").id
                for i in targets
            ]
            filed = time.perf_counter() - start
            notified = "SELECT count(*) FROM station_notification WHERE request_id BETWEEN :low AND :high"
            _until(lambda: _count(pki, notified, ids) == len(ids) * len(FIRMWARE_STATUSES))
            total = time.perf_counter() - start
            rows.append(
                (
                    f"UpdateFirmware to {len(ids)} stations, all {len(ids) * len(FIRMWARE_STATUSES)} statuses recorded",
                    f"{total:.2f} s (filing + signing {filed:.2f} s; the last status {total - filed:.2f} s after)",
                )
            )
            print(rows[-1], flush=True)

            variant = "NOTIFY" if not pki._ctx.database.is_sqlite else "commit counter"
            for label, (probe, _) in (
                (f"notifications ({variant})", notified_probe),
                (f"polling every {args.call_poll_interval:g} s", polled_probe),
            ):
                to_station, to_answer = _probe(pki, received, probe, args.probes, args.call_poll_interval)
                rows.append(
                    (
                        f"one call filed → received by the station, {label}",
                        f"p50 {_ms(to_station, 0.5)}, p99 {_ms(to_station, 0.99)}, max {_ms(to_station, 1.0)} ms"
                        f" (→ answer recorded p50 {_ms(to_answer, 0.5)} ms)",
                    )
                )
                print(rows[-1], flush=True)
            rows.append(("load average (1 min) at the end: a shared machine", f"{os.getloadavg()[0]:.1f}"))
            width = max(len(name) for name, _ in rows)
            print(f"\n{'figure'.ljust(width)}  value")
            for name, value in rows:
                print(f"{name.ljust(width)}  {value}")
            for client in clients:
                client.terminate()
        finally:
            pki.close()
            for bridge in bridges:
                bridge.send_signal(signal.SIGINT)
            for bridge in bridges:
                try:
                    bridge.wait(timeout=30)
                except subprocess.TimeoutExpired:
                    bridge.kill()


if __name__ == "__main__":
    main()
