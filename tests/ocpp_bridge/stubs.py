"""A tiny local HTTP server for OCSP and CRL forwarding tests: 127.0.0.1, an ephemeral port, stops itself."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

# (method, path, body) -> (status, content type, body)
Responder = Callable[[str, str, bytes], tuple[int, str, bytes]]


@contextmanager
def http_stub(respond: Responder, *, lifetime: float = 30.0) -> Iterator[tuple[str, list[tuple[str, str, bytes]]]]:
    """Serve ``respond`` on http://127.0.0.1:<port>; yields the base URL and the requests seen."""
    seen: list[tuple[str, str, bytes]] = []

    class Handler(BaseHTTPRequestHandler):
        def _serve(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length) if length else b""
            seen.append((self.command, self.path, body))
            status, content_type, payload = respond(self.command, self.path, body)
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        do_GET = do_POST = _serve  # noqa: N815

        def log_message(self, format: str, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    # Never outlive a hung test: the server shuts itself down after ``lifetime`` seconds.
    timer = threading.Timer(lifetime, server.shutdown)
    timer.daemon = True
    timer.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", seen
    finally:
        timer.cancel()
        server.shutdown()
        server.server_close()
        thread.join(5)
