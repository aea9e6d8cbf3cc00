"""Benchmark: the OCPP bridge — concurrent mTLS stations held by one process, and enrollments per second.

1. Connections: ``--stations`` registered stations, each with its own station certificate from
   ``cso-sub``, open a security-profile-3 (mutual TLS) OCPP 2.0.1 WebSocket to one ``evpki bridge``
   process and stay connected; each sends one Heartbeat once everyone is in, to show the
   connection is alive. Prints how many are held and the bridge's resident memory (VmRSS) before
   and after. The load comes from ``--client-processes`` separate processes.
2. Enrollments: ``--enrollers`` connected stations each run ``--rounds`` times SignCertificate →
   CertificateSigned → Accepted (a fresh P-256 key and CSR per round, made before its clock
   starts). The clock starts once every enroller is connected (the handshakes are phase 1's
   subject) and runs in ``--enroll-processes`` processes of their own. Prints enrollments/s,
   p50/p99 of SignCertificate sent → CertificateSigned received, and the CPU the bridge and the
   station processes used meanwhile (on 2 cores they compete for the same CPUs).

The bridge runs as its own process (``evpki bridge``) on 127.0.0.1 in a temporary data directory.

    .venv/bin/python bench/bridge.py [--stations 5000] [--client-processes 4] [--enrollers 100] [--rounds 5]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing
import os
import resource
import signal
import socket
import ssl
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.loadgen import process_cpu_seconds
from pki import PKI, RequestIdentity, Settings

ORGANIZATION = "Bench CSO GmbH"
PASSPHRASE = "evpki-bench-passphrase"
ROOT = Path(__file__).resolve().parents[1]


def _raise_file_limit() -> None:
    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _csr(serial: str) -> tuple[bytes, ec.EllipticCurvePrivateKey]:
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name(
        [x509.NameAttribute(NameOID.ORGANIZATION_NAME, ORGANIZATION), x509.NameAttribute(NameOID.COMMON_NAME, serial)]
    )
    request = x509.CertificateSigningRequestBuilder().subject_name(subject).sign(key, hashes.SHA256())
    return request.public_bytes(serialization.Encoding.PEM), key


def prepare(home: Path, stations: int) -> tuple[Path, list[tuple[str, Path]]]:
    """Initialise the PKI, register the stations and give each a certificate; returns the CA file and (id, pem)."""
    pki = PKI.open(Settings(home=home, key_passphrase=PASSPHRASE))  # type: ignore[arg-type]
    pki.cas.init(organization=ORGANIZATION, actor="bench")
    ca_file = home / "cso-root.pem"
    ca_file.write_bytes(pki.cas.chain("cso-sub")[-1].public_bytes(serialization.Encoding.PEM))
    out = home / "stations"
    out.mkdir()
    result = []
    for index in range(stations):
        identity, serial = f"CP{index:06d}", f"SN{index:06d}"
        pki.stations.add(identity=identity, serial=serial, actor="bench")
        csr, key = _csr(serial)
        issued = pki.certificates.issue(
            profile="station", csr=csr, identity=RequestIdentity(station_id=identity, station_serial=serial)
        )
        pem = out / f"{identity}.pem"
        pem.write_bytes(
            key.private_bytes(
                serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
            )
            + issued.chain_pem.encode()
        )
        result.append((identity, pem))
    pki.close()
    return ca_file, result


def _client_context(ca_file: Path, pem: Path) -> ssl.SSLContext:
    context = ssl.create_default_context(ssl.Purpose.SERVER_AUTH, cafile=str(ca_file))
    context.check_hostname = False  # the bridge's certificate names 127.0.0.1; identity is not what is measured
    context.load_cert_chain(str(pem))
    return context


async def connect_station(url: str, ca_file: Path, identity: str, pem: Path, *, open_timeout: float = 60) -> Any:
    """A station's OCPP 2.0.1 connection over mutual TLS, as the benches' stations open it."""
    import websockets

    return await websockets.connect(
        f"{url}/{identity}",
        subprotocols=["ocpp2.0.1"],  # type: ignore[list-item]
        ssl=_client_context(ca_file, pem),
        open_timeout=open_timeout,
        ping_interval=None,
        compression=None,
        max_size=65536,
    )


def _frame(action: str, payload: dict[str, object]) -> tuple[str, str]:
    message_id = uuid.uuid4().hex
    return message_id, json.dumps([2, message_id, action, payload])


async def _hold(
    url: str, ca_file: Path, stations: list[tuple[str, Path]], ready: object, go: object, done: object
) -> None:
    connections = []
    for identity, pem in stations:
        try:
            connection = await connect_station(url, ca_file, identity, pem)
        except Exception as exc:
            print(f"  connect {identity} failed: {exc!r}", flush=True)
            continue
        connections.append(connection)
    ready.put(len(connections))  # type: ignore[attr-defined]
    await asyncio.get_running_loop().run_in_executor(None, go.wait)  # type: ignore[attr-defined]
    alive = 0
    for connection in connections:
        message_id, frame = _frame("Heartbeat", {})
        try:
            await connection.send(frame)
            answer = json.loads(await asyncio.wait_for(connection.recv(), 30))
            alive += answer[0] == 3 and answer[1] == message_id
        except Exception:
            continue
    done.put(alive)  # type: ignore[attr-defined]
    await asyncio.get_running_loop().run_in_executor(None, go.wait)  # type: ignore[attr-defined]
    for connection in connections:
        await connection.close()


def _client_process(
    url: str, ca_file: Path, stations: list[tuple[str, Path]], ready: object, go: object, done: object
) -> None:
    _raise_file_limit()
    asyncio.run(_hold(url, ca_file, stations, ready, go, done))


def _rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


async def _enroll_all(
    url: str, ca_file: Path, stations: list[tuple[str, Path]], rounds: int, ready: object, go: object
) -> tuple[list[float], float]:
    """Connect every station and make its CSRs, say so on ``ready``, then enroll ``rounds`` times each
    once ``go`` is set; returns the latencies and the seconds from ``go`` to the last answer."""
    connections = [await connect_station(url, ca_file, identity, pem) for identity, pem in stations]
    csrs = [[_csr("SN" + identity[2:])[0].decode() for _ in range(rounds)] for identity, _ in stations]
    await asyncio.sleep(1)  # the bridge's on-connect work (pending deliveries, boot reconciliation) settles
    ready.put(len(connections))  # type: ignore[attr-defined]
    await asyncio.get_running_loop().run_in_executor(None, go.wait)  # type: ignore[attr-defined]
    start = time.perf_counter()
    pairs = zip(connections, csrs, strict=True)
    results = await asyncio.gather(*(_enroll(connection, mine) for connection, mine in pairs))
    elapsed = time.perf_counter() - start
    for connection in connections:
        await connection.close()
    return [value for result in results for value in result], elapsed


async def _enroll(connection: Any, csrs: list[str]) -> list[float]:
    latencies = []
    for csr in csrs:
        start = time.perf_counter()
        message_id, frame = _frame("SignCertificate", {"csr": csr, "certificateType": "ChargingStationCertificate"})
        await connection.send(frame)
        while True:
            message = json.loads(await asyncio.wait_for(connection.recv(), 60))
            if message[0] == 3 and message[1] == message_id:
                if message[2].get("status") != "Accepted":
                    raise RuntimeError(f"SignCertificate answered {message[2]}")
                continue
            if message[0] == 2 and message[2] == "CertificateSigned":
                latencies.append(time.perf_counter() - start)
                await connection.send(json.dumps([3, message[1], {"status": "Accepted"}]))
                break
            if message[0] == 2:  # another bridge call (reconciliation): answer so it does not wait
                await connection.send(json.dumps([4, message[1], "NotImplemented", "bench", {}]))
    return latencies


def _enroll_process(
    url: str, ca_file: Path, stations: list[tuple[str, Path]], rounds: int, ready: object, go: object, done: object
) -> None:
    _raise_file_limit()
    latencies, elapsed = asyncio.run(_enroll_all(url, ca_file, stations, rounds, ready, go))
    done.put((latencies, elapsed, time.process_time()))  # type: ignore[attr-defined]


def _enrollments(
    url: str, ca_file: Path, stations: list[tuple[str, Path]], rounds: int, processes: int, bridge_pid: int
) -> tuple[list[float], float, float, float]:
    """Enrollments from ``processes`` client processes, timed from the moment every station is
    connected; returns latencies, seconds, and the bridge's and the clients' CPU (cores' worth)."""
    context = multiprocessing.get_context("spawn")
    ready, done, go = context.Queue(), context.Queue(), context.Event()
    share = [stations[i::processes] for i in range(processes)]
    clients = [
        context.Process(target=_enroll_process, args=(url, ca_file, part, rounds, ready, go, done)) for part in share
    ]
    for client in clients:
        client.start()
    for _ in clients:
        ready.get(timeout=600)
    client_cpu_before = [process_cpu_seconds(client.pid) for client in clients if client.pid]  # type: ignore[arg-type]
    bridge_before = process_cpu_seconds(bridge_pid)
    go.set()
    outcomes = [done.get(timeout=600) for _ in clients]
    elapsed = max(outcome[1] for outcome in outcomes)
    bridge_cpu = (process_cpu_seconds(bridge_pid) - bridge_before) / elapsed
    # Each client reports its own process_time at the end; what it spent before ``go`` is taken off.
    client_cpu = (sum(outcome[2] for outcome in outcomes) - sum(client_cpu_before)) / elapsed
    for client in clients:
        client.join(timeout=60)
    return [value for outcome in outcomes for value in outcome[0]], elapsed, bridge_cpu, client_cpu


def _p99(ordered: list[float]) -> float:
    return ordered[min(len(ordered) - 1, round(0.99 * (len(ordered) - 1)))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--stations", type=int, default=5000)
    parser.add_argument("--client-processes", type=int, default=4)
    parser.add_argument("--enrollers", type=int, default=100)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--enroll-processes", type=int, default=1, help="station processes for the enrollments (1)")
    args = parser.parse_args()
    _raise_file_limit()
    with tempfile.TemporaryDirectory(prefix="evpki-bench-bridge-") as directory:
        home = Path(directory)
        print(f"preparing {args.stations} stations with certificates …", flush=True)
        ca_file, stations = prepare(home, args.stations)
        port = _free_port()
        env = {**os.environ, "EVPKI_HOME": str(home), "EVPKI_KEY_PASSPHRASE": PASSPHRASE}
        bridge = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "cli.main",
                "bridge",
                "--host",
                "127.0.0.1",
                "--port",
                str(port),
                "--basic-port",
                "0",
            ],
            cwd=ROOT,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=(home / "bridge.log").open("wb"),
        )
        try:
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline:
                try:
                    socket.create_connection(("127.0.0.1", port), timeout=1).close()
                    break
                except OSError:
                    time.sleep(0.2)
            url = f"wss://127.0.0.1:{port}"
            rss_idle = _rss_kib(bridge.pid)
            context = multiprocessing.get_context("spawn")
            ready, done, go = context.Queue(), context.Queue(), context.Event()
            share = [stations[i :: args.client_processes] for i in range(args.client_processes)]
            start = time.perf_counter()
            clients = [
                context.Process(target=_client_process, args=(url, ca_file, part, ready, go, done)) for part in share
            ]
            for client in clients:
                client.start()
            held = sum(ready.get(timeout=900) for _ in clients)
            connect_seconds = time.perf_counter() - start
            rss_held = _rss_kib(bridge.pid)
            go.set()
            alive = sum(done.get(timeout=600) for _ in clients)
            print(
                f"\nconnections: {held} of {args.stations} mTLS (OCPP 2.0.1) held by one bridge process, "
                f"{alive} answered a Heartbeat afterwards; all connected in {connect_seconds:.1f} s"
            )
            print(
                f"  bridge RSS: {rss_idle / 1024:.0f} MiB idle, {rss_held / 1024:.0f} MiB with {held} connections "
                f"({(rss_held - rss_idle) / max(held, 1):.1f} KiB per connection)"
            )
            for client in clients:
                client.join(timeout=120)

            enrollers = stations[: args.enrollers]
            latencies, elapsed, bridge_cpu, client_cpu = _enrollments(
                url, ca_file, enrollers, args.rounds, args.enroll_processes, bridge.pid
            )
            ms = sorted(value * 1000 for value in latencies)
            rate = len(latencies) / elapsed
            print(
                f"\nenrollments: {len(latencies)} (SignCertificate → CertificateSigned → Accepted) by "
                f"{len(enrollers)} connected stations in {elapsed:.2f} s = {rate:.0f}/s"
            )
            print(f"  latency p50 {statistics.median(ms):.1f} ms, p99 {_p99(ms):.1f} ms, max {ms[-1]:.1f} ms")
            print(
                f"  CPU meanwhile (share of one core): bridge {bridge_cpu:.0%} "
                f"({bridge_cpu / rate * 1e6:.0f} µs per enrollment), {args.enroll_processes} station "
                f"process(es) {client_cpu:.0%}; {os.cpu_count()} cores"
            )
            print(f"\naim: >= 300 enrollments/s, p99 <= 500 ms: {rate:.0f}/s, p99 {_p99(ms):.0f} ms  "
                  f"met: {'yes' if rate >= 300 and _p99(ms) <= 500 else 'NO'}")  # fmt: skip
        finally:
            bridge.send_signal(signal.SIGINT)
            try:
                bridge.wait(timeout=30)
            except subprocess.TimeoutExpired:
                bridge.kill()


if __name__ == "__main__":
    main()
