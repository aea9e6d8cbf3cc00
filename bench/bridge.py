"""Benchmark: the OCPP bridge — concurrent mTLS stations held by one process, and enrollments per second.

1. Connections: ``--stations`` registered stations, each with its own station certificate from
   ``cso-sub``, open a security-profile-3 (mutual TLS) OCPP 2.0.1 WebSocket to one ``evpki bridge``
   process and stay connected; each sends one Heartbeat once everyone is in, to show the
   connection is alive. Prints how many are held and the bridge's resident memory (VmRSS) before
   and after. The load comes from ``--client-processes`` separate processes.
2. Enrollments: ``--enrollers`` connected stations each run ``--rounds`` times SignCertificate →
   CertificateSigned → Accepted (a fresh P-256 key and CSR per round, made before its clock
   starts). Prints enrollments/s and p50/p99 of SignCertificate sent → CertificateSigned received.

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

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

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


def _frame(action: str, payload: dict[str, object]) -> tuple[str, str]:
    message_id = uuid.uuid4().hex
    return message_id, json.dumps([2, message_id, action, payload])


async def _hold(
    url: str, ca_file: Path, stations: list[tuple[str, Path]], ready: object, go: object, done: object
) -> None:
    import websockets

    connections = []
    for identity, pem in stations:
        try:
            connection = await websockets.connect(
                f"{url}/{identity}",
                subprotocols=["ocpp2.0.1"],
                ssl=_client_context(ca_file, pem),  # type: ignore[list-item]
                open_timeout=60,
                ping_interval=None,
                compression=None,
                max_size=65536,
            )
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


async def _enroll(url: str, ca_file: Path, identity: str, pem: Path, serial: str, rounds: int) -> list[float]:
    import websockets

    csrs = [_csr(serial)[0].decode() for _ in range(rounds)]
    latencies = []
    async with websockets.connect(
        f"{url}/{identity}",
        subprotocols=["ocpp2.0.1"],
        ssl=_client_context(ca_file, pem),
        open_timeout=60,
        ping_interval=None,
    ) as connection:
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


async def _enrollments(
    url: str, ca_file: Path, stations: list[tuple[str, Path]], rounds: int
) -> tuple[int, float, list[float]]:
    start = time.perf_counter()
    results = await asyncio.gather(
        *(_enroll(url, ca_file, identity, pem, "SN" + identity[2:], rounds) for identity, pem in stations)
    )
    elapsed = time.perf_counter() - start
    latencies = [value for result in results for value in result]
    return len(latencies), elapsed, latencies


def _p99(ordered: list[float]) -> float:
    return ordered[min(len(ordered) - 1, round(0.99 * (len(ordered) - 1)))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--stations", type=int, default=5000)
    parser.add_argument("--client-processes", type=int, default=4)
    parser.add_argument("--enrollers", type=int, default=100)
    parser.add_argument("--rounds", type=int, default=5)
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
            count, elapsed, latencies = asyncio.run(_enrollments(url, ca_file, enrollers, args.rounds))
            ms = sorted(value * 1000 for value in latencies)
            print(
                f"\nenrollments: {count} (SignCertificate → CertificateSigned → Accepted) by {len(enrollers)} "
                f"stations in {elapsed:.2f} s = {count / elapsed:.0f}/s"
            )
            print(f"  latency p50 {statistics.median(ms):.1f} ms, p99 {_p99(ms):.1f} ms, max {ms[-1]:.1f} ms")
        finally:
            bridge.send_signal(signal.SIGINT)
            try:
                bridge.wait(timeout=30)
            except subprocess.TimeoutExpired:
                bridge.kill()


if __name__ == "__main__":
    main()
