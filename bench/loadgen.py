"""Closed-loop HTTP load generator shared by the HTTP benchmarks, and a measure of its own ceiling.

:func:`run_load` keeps a fixed number of connections busy -- each sends a request, waits for the
whole response, sends the next -- for a fixed time after a warm-up (or for a fixed number of
requests), and records every request's latency. It is written on bare asyncio protocols under
uvloop: no HTTP client library, requests pre-encoded as bytes, responses framed by
``Content-Length`` (or by the server closing). Two modes:

* ``keep_alive=True``: HTTP/1.1, requests one after another on long-lived connections (a CSMS);
* ``keep_alive=False``: a new TCP connection per request, ``HTTP/1.0`` + ``Connection: close``;
  the latency includes the connect. The client waits for the server to close first, so its
  ephemeral ports do not pile up in TIME_WAIT.

Every request written is complete: ``openssl ocsp`` serves one connection at a time and a silent
client would wedge it. The generator also reports the CPU it used and, for the pids it is given,
the CPU the server used in the measured window, so a reader can tell which side was saturated.

Run as a script it measures its ceiling: a canned-response server (on its own core) answers
instantly, so the rate reached is what one generator process can drive.

    .venv/bin/python bench/loadgen.py [--duration 3] [--concurrency 16]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import math
import os
import signal
import socket
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

try:
    import uvloop
except ImportError:  # pragma: no cover - uvicorn[standard] brings it
    uvloop = None

__all__ = [
    "LoadResult",
    "cpu_count",
    "fetch",
    "free_port",
    "http_request",
    "measure_ceiling",
    "pinned",
    "process_cpu_seconds",
    "run_load",
    "spawn",
    "stop",
    "system_busy_seconds",
    "wait_until_serving",
]

_CLK_TCK = os.sysconf("SC_CLK_TCK")
_GRACE = 2.0  # seconds allowed for in-flight requests after the end before connections are cut
_CANNED_BODY = 1024


# -- requests and one-shot fetches -----------------------------------------------------------


def http_request(
    method: str,
    path: str,
    body: bytes = b"",
    *,
    content_type: str | None = None,
    keep_alive: bool = True,
    headers: Mapping[str, str] | None = None,
    host: str = "127.0.0.1",
) -> bytes:
    """One complete request as bytes: HTTP/1.1 for keep-alive, HTTP/1.0 + Connection: close otherwise."""
    lines = [f"{method} {path} {'HTTP/1.1' if keep_alive else 'HTTP/1.0'}", f"Host: {host}"]
    if content_type is not None:
        lines.append(f"Content-Type: {content_type}")
    if body or method in ("POST", "PUT"):
        lines.append(f"Content-Length: {len(body)}")
    lines.extend(f"{name}: {value}" for name, value in (headers or {}).items())
    if not keep_alive:
        lines.append("Connection: close")
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body


def _frame(buffer: bytes | bytearray) -> tuple[int, int, int] | None:
    """(status, body start, body end) once the head is in; body end -1 when only EOF ends it."""
    end = buffer.find(b"\r\n\r\n")
    if end < 0:
        return None
    head = bytes(buffer[:end]).lower()
    status = int(head[9:12])
    at = head.find(b"\ncontent-length:")
    if at < 0:
        return status, end + 4, -1
    stop = head.find(b"\r", at + 16)
    return status, end + 4, end + 4 + int(head[at + 16 : stop if stop >= 0 else end])


def fetch(host: str, port: int, request: bytes, *, timeout: float = 10.0) -> tuple[int, bytes, bool]:
    """Send one complete request on a new connection: (status, body, whether the server closed it)."""
    with socket.create_connection((host, port), timeout=timeout) as sock:
        sock.sendall(request)
        buffer = b""
        framed = None
        while True:
            chunk = sock.recv(65536)
            if not chunk:
                break
            buffer += chunk
            framed = _frame(buffer)
            if framed is not None and 0 <= framed[2] <= len(buffer):
                break
        framed = _frame(buffer)
        if framed is None:
            raise ConnectionError(f"no HTTP response from {host}:{port}")
        status, start, end = framed
        if end < 0:
            return status, buffer[start:], True
        sock.settimeout(0.5)
        try:
            closed = sock.recv(1) == b""
        except TimeoutError:
            closed = False
        return status, buffer[start:end], closed


def wait_until_serving(
    host: str, port: int, request: bytes, *, timeout: float = 30.0, alive: Callable[[], bool] | None = None
) -> tuple[int, bytes]:
    """Retry ``request`` (always a complete one) until the server answers; its (status, body)."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            status, body, _ = fetch(host, port, request, timeout=5.0)
            return status, body
        except OSError:
            if time.monotonic() > deadline or (alive is not None and not alive()):
                raise
            time.sleep(0.05)


# -- processes, cores, ports -----------------------------------------------------------------


def cpu_count() -> int:
    return len(os.sched_getaffinity(0))


@contextlib.contextmanager
def pinned(cpu: int | None) -> Iterator[None]:
    """Run the block with this process on one core (``None``: leave the affinity alone)."""
    if cpu is None:
        yield
        return
    before = os.sched_getaffinity(0)
    os.sched_setaffinity(0, {cpu})
    try:
        yield
    finally:
        os.sched_setaffinity(0, before)


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def spawn(
    argv: Sequence[str],
    *,
    cpu: int | str | None = None,
    env: Mapping[str, str] | None = None,
    cwd: Path | None = None,
    log: Path | None = None,
) -> subprocess.Popen[bytes]:
    """Start a server in its own process group (so :func:`stop` reaches its children), optionally on one core."""
    command = [*(["taskset", "-c", str(cpu)] if cpu is not None else []), *argv]
    sink = open(log, "ab") if log is not None else subprocess.DEVNULL  # noqa: SIM115 - handed to the child
    try:
        return subprocess.Popen(
            command,
            env=dict(env) if env is not None else None,
            cwd=cwd,
            stdin=subprocess.DEVNULL,
            stdout=sink,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    finally:
        if log is not None:
            sink.close()  # type: ignore[union-attr]


def stop(process: subprocess.Popen[bytes] | None, *, timeout: float = 10.0) -> None:
    """SIGTERM the process group, SIGKILL it if it lingers; safe to call twice."""
    if process is None:
        return
    for sig, wait in ((signal.SIGTERM, timeout), (signal.SIGKILL, 5.0)):
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(process.pid, sig)
        try:
            process.wait(wait)
            break
        except subprocess.TimeoutExpired:
            continue
    # A worker that outlived its group leader is still in the group.
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(process.pid, signal.SIGKILL)


def process_cpu_seconds(pid: int) -> float:
    """User + system CPU of a process (all its threads) from /proc; 0 once it is gone."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return 0.0
    fields = stat[stat.rindex(")") + 2 :].split()
    return (int(fields[11]) + int(fields[12])) / _CLK_TCK


def system_busy_seconds() -> float:
    """CPU seconds all cores have spent in processes (user, nice, system) since boot, from /proc/stat.

    Interrupt and softirq time are left out: loopback traffic of the benchmark itself lands there.
    """
    fields = Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]
    user, nice, system = (int(value) for value in fields[:3])
    return (user + nice + system) / _CLK_TCK


def children(pid: int) -> list[int]:
    """Direct children of ``pid`` (e.g. uvicorn's workers)."""
    found: list[int] = []
    with contextlib.suppress(OSError):
        for task in Path(f"/proc/{pid}/task").iterdir():
            found.extend(int(child) for child in (task / "children").read_text().split())
    return found


# -- the generator ---------------------------------------------------------------------------


@dataclass(slots=True)
class LoadResult:
    label: str
    keep_alive: bool
    concurrency: int
    seconds: float  # the measured window
    completed: int  # successful responses in the window
    latencies: list[float]  # seconds, sorted, of those responses
    errors: Counter[str] = field(default_factory=Counter)  # whole run, warm-up included
    samples: list[tuple[int, bytes]] = field(default_factory=list)  # (request index, body)
    generator_cpu: float = 0.0  # fraction of one core over the window
    server_cpu: dict[int, float] = field(default_factory=dict)  # pid -> fraction of one core
    other_cpu: float = 0.0  # cores' worth of CPU used by everything else on the machine meanwhile
    connections: int = 0

    @property
    def rate(self) -> float:
        return self.completed / self.seconds if self.seconds > 0 else 0.0

    def percentile(self, q: float) -> float:
        """Nearest-rank percentile in milliseconds."""
        if not self.latencies:
            return float("nan")
        rank = min(len(self.latencies), max(1, math.ceil(len(self.latencies) * q)))
        return self.latencies[rank - 1] * 1000

    @property
    def p50(self) -> float:
        return self.percentile(0.50)

    @property
    def p99(self) -> float:
        return self.percentile(0.99)

    @property
    def error_count(self) -> int:
        return sum(self.errors.values())


class _Connection(asyncio.Protocol):
    __slots__ = ("buffer", "framed", "generator", "index", "responded", "sent_at", "transport")

    def __init__(self, generator: _Generator) -> None:
        self.generator = generator
        self.transport: asyncio.Transport | None = None
        self.buffer = bytearray()
        self.framed: tuple[int, int, int] | None = None
        self.index = -1
        self.sent_at = 0.0
        self.responded = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment] # uvloop's are not asyncio.Transport subclasses
        sock = transport.get_extra_info("socket")
        if sock is not None:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.generator.open.add(self)
        self.generator.send(self)

    def data_received(self, data: bytes) -> None:
        buffer = self.buffer
        buffer += data
        while True:
            if self.framed is None:
                self.framed = _frame(buffer)
                if self.framed is None:
                    return
            status, start, end = self.framed
            if end < 0 or len(buffer) < end:
                return
            body = bytes(buffer[start:end])
            del buffer[:end]
            self.framed = None
            self.responded = True
            self.generator.completed(self, status, body)
            if not buffer or self.transport is None or self.transport.is_closing():
                return

    def eof_received(self) -> bool | None:
        if not self.responded and self.framed is not None and self.framed[2] < 0:
            status, start, _ = self.framed
            self.responded = True
            self.generator.completed(self, status, bytes(self.buffer[start:]))
        return None  # close the transport

    def connection_lost(self, exc: Exception | None) -> None:
        self.generator.lost(self, exc)
        self.transport = None


class _Generator:
    def __init__(
        self,
        loop: asyncio.AbstractEventLoop,
        host: str,
        port: int,
        requests: Sequence[bytes],
        *,
        concurrency: int,
        keep_alive: bool,
        expect_status: int,
        body_ok: Callable[[bytes], bool] | None,
        limit: int | None,
        sample_every: int,
        max_samples: int,
    ) -> None:
        self.loop = loop
        self.host, self.port = host, port
        self.requests = requests
        self.concurrency = concurrency
        self.keep_alive = keep_alive
        self.expect_status = expect_status
        self.body_ok = body_ok
        self.limit = limit
        self.sample_every = sample_every
        self.max_samples = max_samples
        self.sent = 0
        self.finished = 0  # responses and failures, warm-up included
        self.measuring = limit is not None  # a fixed count is measured from the first request
        self.ended = False
        self.latencies: list[float] = []
        self.errors: Counter[str] = Counter()
        self.samples: list[tuple[int, bytes]] = []
        self.open: set[_Connection] = set()
        self.connecting = 0
        self.scheduled = 0  # staggered first connections not opened yet
        self.on_end: Callable[[], None] | None = None
        self.connections = 0
        self.done = loop.create_future()

    # Requests are taken round-robin from one list shared by all connections.
    def send(self, connection: _Connection) -> None:
        transport = connection.transport
        if transport is None:
            return
        if self.ended or (self.limit is not None and self.sent >= self.limit):
            transport.close()
            return
        index = self.sent % len(self.requests)
        self.sent += 1
        connection.index = index
        connection.responded = False
        if self.keep_alive:
            connection.sent_at = time.perf_counter()
        transport.write(self.requests[index])

    def completed(self, connection: _Connection, status: int, body: bytes) -> None:
        now = time.perf_counter()
        self.finished += 1
        if status != self.expect_status:
            self.errors[f"HTTP {status}"] += 1
        elif self.body_ok is not None and not self.body_ok(body):
            self.errors["bad body"] += 1
        elif self.measuring and not self.ended:
            self.latencies.append(now - connection.sent_at)
            if len(self.latencies) % self.sample_every == 0 and len(self.samples) < self.max_samples:
                self.samples.append((connection.index, body))
        if self.limit is not None and self.finished >= self.limit:
            self.end()
        elif self.keep_alive:
            self.send(connection)
        # without keep-alive the next request goes out when the server has closed (lost())

    def lost(self, connection: _Connection, exc: Exception | None) -> None:
        self.open.discard(connection)
        if connection.index >= 0 and not connection.responded:
            self.finished += 1
            self.errors[f"connection lost ({type(exc).__name__ if exc else 'closed early'})"] += 1
            if self.limit is not None and self.finished >= self.limit:
                self.end()
        self.replace()

    def replace(self) -> None:
        """Keep ``concurrency`` connections going (keep-alive: only to replace a lost one)."""
        if self.ended or (self.limit is not None and self.sent >= self.limit):
            if not self.open and not self.connecting and not self.done.done():
                self.done.set_result(None)
            return
        while len(self.open) + self.connecting + self.scheduled < self.concurrency:
            self.connect()

    def start(self, stagger: float) -> None:
        """Open the connections: all at once, or one every ``stagger`` seconds."""
        if stagger <= 0:
            self.replace()
            return
        self.scheduled = self.concurrency
        for i in range(self.concurrency):
            self.loop.call_later(i * stagger, self._scheduled_connect)

    def _scheduled_connect(self) -> None:
        self.scheduled -= 1
        if not self.ended:
            self.connect()

    def connect(self) -> None:
        connection = _Connection(self)
        connection.sent_at = time.perf_counter()  # a new connection's latency includes the connect
        self.connecting += 1
        self.connections += 1
        task = self.loop.create_task(self.loop.create_connection(lambda: connection, self.host, self.port))
        task.add_done_callback(self._connected)

    def _connected(self, task: asyncio.Task[tuple[asyncio.BaseTransport, asyncio.BaseProtocol]]) -> None:
        self.connecting -= 1
        if task.cancelled():
            return
        exc = task.exception()
        if exc is not None:
            self.errors[f"connect failed ({type(exc).__name__})"] += 1
            self.finished += 1
            if self.limit is not None:
                self.sent += 1  # the request it was meant for will not be retried
                if self.finished >= self.limit:
                    self.end()
            self.loop.call_later(0.01, self.replace)

    def end(self) -> None:
        if self.ended:
            return
        self.ended = True
        if self.on_end is not None:
            self.on_end()
        for connection in list(self.open):
            if connection.transport is not None and connection.responded:
                connection.transport.close()
        self.loop.call_later(_GRACE, self.abort)
        self.replace()

    def abort(self) -> None:
        for connection in list(self.open):
            if connection.transport is not None:
                connection.index = -1  # cut at the end: not an error
                connection.transport.abort()
        if not self.done.done():
            self.done.set_result(None)


def _loop_factory() -> asyncio.AbstractEventLoop:
    return uvloop.new_event_loop() if uvloop is not None else asyncio.new_event_loop()


def run_load(
    host: str,
    port: int,
    requests: Sequence[bytes],
    *,
    label: str = "",
    concurrency: int = 16,
    duration: float = 10.0,
    warmup: float = 2.0,
    keep_alive: bool = True,
    count: int | None = None,
    expect_status: int = 200,
    body_ok: Callable[[bytes], bool] | None = None,
    server_pids: Sequence[int] | Callable[[], Sequence[int]] = (),
    sample_every: int = 97,
    max_samples: int = 200,
    stagger: float = 0.0,
) -> LoadResult:
    """Drive the server and measure it; ``count`` sends exactly that many requests (no warm-up) instead.

    ``requests`` are complete pre-encoded requests, taken round-robin (with ``count``, at most
    ``count`` of them, in order); with ``keep_alive=False`` they must ask for ``Connection: close``.
    Throughput counts successful responses (``expect_status`` and ``body_ok``) completed in the
    window; anything else is an error, counted over the whole run. ``stagger`` opens the
    connections one every so many seconds rather than all at once (servers whose workers share
    one listening socket may otherwise hand every connection of a burst to the same worker).
    ``server_pids`` (or a function returning them, asked at the start and at the end of the
    window) are the processes whose CPU is reported.
    """
    if not requests:
        raise ValueError("no requests to send")

    async def drive() -> LoadResult:
        loop = asyncio.get_running_loop()
        generator = _Generator(
            loop,
            host,
            port,
            requests,
            concurrency=concurrency,
            keep_alive=keep_alive,
            expect_status=expect_status,
            body_ok=body_ok,
            limit=count,
            sample_every=sample_every,
            max_samples=max_samples,
        )
        marks: dict[str, tuple[float, float, dict[int, float], float]] = {}

        def mark(name: str) -> None:
            if name in marks:
                return
            pids = server_pids() if callable(server_pids) else server_pids
            servers = {pid: process_cpu_seconds(pid) for pid in pids}
            marks[name] = (time.perf_counter(), time.process_time(), servers, system_busy_seconds())

        generator.on_end = lambda: mark("end")

        def start_window() -> None:
            mark("start")
            generator.measuring = True

        def end_window() -> None:
            mark("end")
            generator.end()

        if count is None:
            loop.call_later(warmup, start_window)
            loop.call_later(warmup + duration, end_window)
        else:
            start_window()
        generator.start(stagger)
        await generator.done
        mark("end")
        (t0, c0, s0, b0), (t1, c1, s1, b1) = marks["start"], marks["end"]
        window = t1 - t0
        # A process that started in the window (a new database backend) spent all its CPU in it;
        # one that exited reads as 0 at the end and counts as nothing.
        servers = {pid: max(0.0, end - s0.get(pid, 0.0)) for pid, end in s1.items()}
        ours = (c1 - c0) + sum(servers.values())
        return LoadResult(
            label=label,
            keep_alive=keep_alive,
            concurrency=concurrency,
            seconds=window,
            completed=len(generator.latencies),
            latencies=sorted(generator.latencies),
            errors=generator.errors,
            samples=generator.samples,
            generator_cpu=(c1 - c0) / window if window > 0 else 0.0,
            server_cpu={pid: seconds / window for pid, seconds in servers.items()},
            other_cpu=max(0.0, (b1 - b0) - ours) / window if window > 0 else 0.0,
            connections=generator.connections,
        )

    with asyncio.Runner(loop_factory=_loop_factory) as runner:
        return runner.run(drive())


# -- the canned server and the generator's ceiling --------------------------------------------


class _Canned(asyncio.Protocol):
    """Answers every complete request at once with the same body; closes if the request asks to."""

    def __init__(self, keep_alive_response: bytes, close_response: bytes) -> None:
        self.keep_alive_response = keep_alive_response
        self.close_response = close_response
        self.buffer = bytearray()
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment] # uvloop's are not asyncio.Transport subclasses

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        while self.transport is not None:
            end = self.buffer.find(b"\r\n\r\n")
            if end < 0:
                return
            head = bytes(self.buffer[:end]).lower()
            at = head.find(b"\ncontent-length:")
            length = 0
            if at >= 0:
                stop = head.find(b"\r", at + 16)
                length = int(head[at + 16 : stop if stop >= 0 else len(head)])
            if len(self.buffer) < end + 4 + length:
                return
            del self.buffer[: end + 4 + length]
            if b"connection: close" in head or head.split(b"\r\n", 1)[0].endswith(b"http/1.0"):
                self.transport.write(self.close_response)
                self.transport.close()
                self.transport = None
            else:
                self.transport.write(self.keep_alive_response)


def serve_canned(port: int, body_size: int) -> None:
    body = b"\x30" * body_size
    head = f"HTTP/1.1 200 OK\r\nContent-Type: application/octet-stream\r\nContent-Length: {body_size}\r\n"
    keep_alive_response = (head + "\r\n").encode() + body
    close_response = (head + "Connection: close\r\n\r\n").encode() + body

    async def main() -> None:
        loop = asyncio.get_running_loop()
        server = await loop.create_server(
            lambda: _Canned(keep_alive_response, close_response), "127.0.0.1", port, backlog=1024
        )
        async with server:
            await server.serve_forever()

    with asyncio.Runner(loop_factory=_loop_factory) as runner, contextlib.suppress(KeyboardInterrupt):
        runner.run(main())


def measure_ceiling(
    *,
    concurrency: int,
    duration: float,
    warmup: float,
    server_cpu: int | None,
    generator_cpu: int | None,
    body_size: int = _CANNED_BODY,
    request_size: int = 100,
) -> list[LoadResult]:
    """What one generator process reaches against a server that does no work: keep-alive, then close."""
    port = free_port()
    server = spawn(
        [sys.executable, __file__, "--serve-canned", str(port), "--body-size", str(body_size)], cpu=server_cpu
    )
    try:
        body = b"\x00" * request_size
        probe = http_request("POST", "/", body, content_type="application/octet-stream", keep_alive=False)
        wait_until_serving("127.0.0.1", port, probe, alive=lambda: server.poll() is None)
        results = []
        with pinned(generator_cpu):
            for keep_alive in (True, False):
                request = http_request(
                    "POST", "/", body, content_type="application/octet-stream", keep_alive=keep_alive
                )
                results.append(
                    run_load(
                        "127.0.0.1",
                        port,
                        [request],
                        label=f"ceiling: canned server, {'keep-alive' if keep_alive else 'conn/request'}",
                        concurrency=concurrency,
                        duration=duration,
                        warmup=warmup,
                        keep_alive=keep_alive,
                        server_pids=[server.pid],
                    )
                )
        return results
    finally:
        stop(server)


def print_results(results: Sequence[LoadResult]) -> None:
    header = ("run", "conns", "req/s", "p50 ms", "p99 ms", "gen CPU", "srv CPU", "other", "errors")
    print(f"{header[0]:<44} " + " ".join(f"{name:>8}" for name in header[1:]))
    for result in results:
        server = sum(result.server_cpu.values())
        print(
            f"{result.label:<44} {result.concurrency:>8} {result.rate:>8.0f} {result.p50:>8.2f} {result.p99:>8.2f} "
            f"{result.generator_cpu:>8.0%} {server:>8.0%} {result.other_cpu:>8.0%} {result.error_count:>8}"
        )


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--duration", type=float, default=3.0, help="measured seconds per mode (default 3)")
    parser.add_argument("--warmup", type=float, default=1.0, help="warm-up seconds per mode (default 1)")
    parser.add_argument("--concurrency", type=int, default=16, help="connections (default 16)")
    parser.add_argument("--serve-canned", type=int, metavar="PORT", help=argparse.SUPPRESS)
    parser.add_argument("--body-size", type=int, default=_CANNED_BODY, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.serve_canned is not None:
        serve_canned(args.serve_canned, args.body_size)
        return 0
    cores = sorted(os.sched_getaffinity(0))
    server_cpu, generator_cpu = (cores[0], cores[1]) if len(cores) >= 2 else (None, None)
    if generator_cpu is None:
        print("note: one core only; server and generator share it", file=sys.stderr)
    results = measure_ceiling(
        concurrency=args.concurrency,
        duration=args.duration,
        warmup=args.warmup,
        server_cpu=server_cpu,
        generator_cpu=generator_cpu,
    )
    print_results(results)
    return 0


if __name__ == "__main__":
    sys.exit(main())
