"""``/ocsp`` answered inside uvicorn's HTTP protocol: no ASGI scope, task or message per request.

Even the bare ASGI responder (:mod:`api.ocsp_asgi`) pays for what ASGI itself is made of: uvicorn
builds a scope, a request-response cycle with its event, starts a task, and turns two messages
into bytes -- together several times what a cached OCSP answer costs. :class:`OcspHttpToolsProtocol`
is uvicorn's own httptools protocol (the HTTP parsing, keep-alive, pipelining and flow control stay
uvicorn's) with one exception: a request that is plainly OCSP --

* ``POST /ocsp`` with a ``Content-Length`` within :data:`~pki.revocation.MAX_REQUEST_BYTES` and no
  ``Transfer-Encoding``, or ``GET /ocsp/<base64>`` with no query;
* no ``Expect: 100-continue``, no upgrade, nothing of the connection's still being answered, and the
  transport accepting writes --

is answered in the parser's callback, synchronously, by the same :class:`~api.ocsp_asgi.OcspEndpoint`
as the ASGI path (:meth:`~api.ocsp_asgi.OcspEndpoint.reply`): the same answers, headers, request
id, latency histogram and access log line, with uvicorn's ``date``/``server`` headers. Everything
else (other routes, an oversized or chunked body, a query string, a request behind a slow one)
goes through ASGI as before, and so answers the same way.

``evpki serve`` runs uvicorn with this protocol (``http=OcspHttpToolsProtocol``). The protocol
finds the endpoint by walking uvicorn's middleware down to the :class:`~api.ocsp_asgi.OcspFirst`
application; with any other application it is plain uvicorn.
"""

from __future__ import annotations

import asyncio
import time
import urllib.parse
from typing import Any

from uvicorn.config import Config
from uvicorn.protocols.http.httptools_impl import STATUS_LINE, HttpToolsProtocol
from uvicorn.server import ServerState

from api.observability import request_id
from api.ocsp_asgi import ROUTE_GET, ROUTE_POST, OcspEndpoint, OcspFirst, Reply, wire_headers
from api.routes.ocsp import decode_get
from pki.revocation import MAX_REQUEST_BYTES

__all__ = ["OcspHttpToolsProtocol", "ocsp_endpoint_of"]

_CLOSE = b"connection: close\r\n"


def ocsp_endpoint_of(app: Any) -> OcspEndpoint | None:
    """The OCSP endpoint of ``app``, looked for under uvicorn's middleware (each keeps ``.app``)."""
    for _ in range(16):
        if isinstance(app, OcspFirst):
            return app.ocsp_endpoint
        app = getattr(app, "app", None)
        if app is None:
            return None
    return None


class OcspHttpToolsProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol, answering plain OCSP requests without ASGI."""

    def __init__(
        self,
        config: Config,
        server_state: ServerState,
        app_state: dict[str, Any],
        _loop: asyncio.AbstractEventLoop | None = None,
    ) -> None:
        super().__init__(config, server_state, app_state, _loop)
        self._endpoint = ocsp_endpoint_of(self.app) if not config.root_path else None
        self._ocsp: bytes | None = None  # the request's method while it is answered here
        self._ocsp_body: list[bytes] = []
        self._defaults: list[tuple[bytes, bytes]] | None = None
        self._defaults_wire = b""

    def on_message_begin(self) -> None:
        self._ocsp = None
        super().on_message_begin()

    def on_headers_complete(self) -> None:
        if self._endpoint is not None and self._takes(self.parser.get_method()):
            return
        super().on_headers_complete()

    def _takes(self, method: bytes) -> bool:
        """Whether this request is answered here (see the module's docstring)."""
        url = self.url
        if method == b"POST":
            if url != b"/ocsp":
                return False
        elif method != b"GET" or not url.startswith(b"/ocsp/") or b"?" in url or b"#" in url:
            return False
        if self.expect_100_continue or self.parser.should_upgrade() or self.flow.write_paused:
            return False
        if self.cycle is not None and not self.cycle.response_complete:
            return False  # pipelined behind an ASGI request: keep the order, go through ASGI too
        if method == b"POST":
            length = -1
            for name, value in self.headers:
                if name == b"content-length":
                    if length >= 0 or not value.isdigit():
                        return False
                    length = int(value)
                elif name == b"transfer-encoding":
                    return False
            if not 0 <= length <= MAX_REQUEST_BYTES:
                return False  # the ASGI path answers 411-less bodies and 413 alike
        self._ocsp = method
        self._ocsp_body = []
        return True

    def on_body(self, body: bytes) -> None:
        if self._ocsp is not None:
            self._ocsp_body.append(body)  # the parser stops at Content-Length, checked above
            return
        super().on_body(body)

    def on_message_complete(self) -> None:
        method = self._ocsp
        if method is None:
            super().on_message_complete()
            return
        self._ocsp = None
        self._answer(method)

    def _answer(self, method: bytes) -> None:
        endpoint = self._endpoint
        assert endpoint is not None
        started = time.perf_counter()
        given = etag = b""
        for name, value in self.headers:
            if name == b"x-request-id":
                given = value
            elif name == b"if-none-match":
                etag = value
        rid = endpoint.request_id(given)
        token = request_id.set(rid)
        method_name = "POST" if method == b"POST" else "GET"
        url = self.url.decode("ascii", "replace")
        path = urllib.parse.unquote(url) if "%" in url else url
        reply: Reply | None = None
        try:
            if method == b"POST":
                reply = endpoint.reply(b"".join(self._ocsp_body), etag, rid)
            else:
                reply = endpoint.reply(decode_get(path[6:]), etag, rid)
        except Exception:
            reply = endpoint.failed(method_name, path, rid)
        finally:
            self._ocsp_body = []
            status = 500 if reply is None else reply.status
            if reply is not None:
                self._write(reply)
            endpoint.finished(method_name, ROUTE_POST if method == b"POST" else ROUTE_GET, path, status, started)
            request_id.reset(token)

    def _write(self, reply: Reply) -> None:
        defaults = self.server_state.default_headers  # a new list each second (the date)
        if defaults is not self._defaults:
            self._defaults, self._defaults_wire = defaults, wire_headers(defaults)
        keep_alive = self.parser.should_keep_alive() and self.parser.get_http_version() == "1.1"
        self.transport.write(
            b"".join(
                (STATUS_LINE[reply.status], self._defaults_wire, reply.wire,
                 b"" if keep_alive else _CLOSE, b"\r\n", reply.body)
            )
        )  # fmt: skip
        self.server_state.total_requests += 1
        if not keep_alive:
            self.transport.close()
            return
        self._unset_keepalive_if_required()
        self.timeout_keep_alive_task = self.loop.call_later(self.timeout_keep_alive, self.timeout_keep_alive_handler)
