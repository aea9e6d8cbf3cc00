"""``/ocsp`` as a bare ASGI responder, ahead of FastAPI: no framework object is made per request.

Routing, middleware and Request/Response objects cost several times what a cached OCSP answer does
(``FastAPI.__call__`` alone, with its telemetry checks, ~15 µs), so :class:`OcspEndpoint` sits
ahead of all of it -- :class:`OcspFirst` is the FastAPI application that calls it before itself --
and answers ``POST /ocsp`` (DER body)
and ``GET /ocsp/<base64>`` (RFC 6960 Appendix A, RFC 5019 §5) itself; any other request goes on to
the application. It does for these two what the stack does for every other route:

* the body limit (OCSP's own, :data:`~pki.revocation.MAX_REQUEST_BYTES`; 413 problem+json as
  :class:`api.limits.BodyLimit` answers, for a Content-Length over it or a body that grows past it);
* the request id (the caller's ``X-Request-Id`` when sane, else one made here, echoed), the HTTP
  latency histogram under ``/ocsp`` or ``/ocsp/{encoded}`` and the access log line, as
  :class:`api.observability.RequestContext` does; an unexpected error is logged and answered 500;
* RFC 5019 §6 caching headers (:mod:`api.caching`'s rule): for a pre-signed answer the head is
  built once per answer (and the time-dependent ``max-age``/``Expires`` once per second), kept with
  the answer (``OcspAnswer.memo``), so a cached answer costs a list concatenation; 304 when
  ``If-None-Match`` names it; nonce and error responses are ``no-store``.

What an answer is (:meth:`OcspEndpoint.reply`) does not depend on ASGI: uvicorn's HTTP protocol
in :mod:`api.ocsp_protocol` asks the same endpoint and writes the answer's bytes itself, without an
ASGI scope, task or message. The FastAPI routes in :mod:`api.routes.ocsp` stay: they describe
``/ocsp`` in the OpenAPI document and answer the same way when the responder is not mounted.
"""

from __future__ import annotations

import datetime as dt
import logging
import os
import time
from email.utils import format_datetime
from itertools import count
from typing import Any, NamedTuple

from fastapi import FastAPI
from starlette.types import ASGIApp, Receive, Scope, Send

from api import metrics
from api.observability import request_id
from api.problems import internal_error_response, problem_response
from api.routes.ocsp import OCSP_RESPONSE, decode_get
from pki import PKI
from pki.revocation import MAX_REQUEST_BYTES, OcspAnswer

__all__ = ["OcspEndpoint", "OcspFirst", "Reply", "wire_headers"]

access_log = logging.getLogger("evpki.access")
error_log = logging.getLogger("evpki.api")

_ID_CHARACTERS = frozenset(b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789._-")
_ID_PREFIX = os.urandom(8).hex()  # this process; the counter tells its requests apart (32 characters in all)
_CONTENT_TYPE = (b"content-type", OCSP_RESPONSE.encode())
_NO_STORE = (b"cache-control", b"no-store")
_MEMO_HEAD = "http.head"
_START = "http.response.start"
ROUTE_POST = "/ocsp"
ROUTE_GET = "/ocsp/{encoded}"


def _http_date(when: dt.datetime) -> bytes:
    return format_datetime(when.astimezone(dt.UTC), usegmt=True).encode()


def wire_headers(headers: list[tuple[bytes, bytes]]) -> bytes:
    """``name: value\\r\\n`` for each header, as HTTP/1.1 sends them."""
    return b"".join(b"%s: %s\r\n" % pair for pair in headers)


def _cache_headers(max_age: int, now: dt.datetime) -> list[tuple[bytes, bytes]]:
    """RFC 5019 §6.2 / :func:`api.caching.cached_response`: max-age, and Expires following it."""
    return [
        (b"cache-control", f"max-age={max_age}, public, no-transform, must-revalidate".encode()),
        (b"expires", _http_date(now + dt.timedelta(seconds=max_age))),
    ]


class Reply(NamedTuple):
    """One HTTP answer: status, headers (also as their HTTP/1.1 bytes), body."""

    status: int
    headers: list[tuple[bytes, bytes]]
    wire: bytes  # ``headers`` as sent on HTTP/1.1, without the status line and the blank line
    body: bytes


class OcspEndpoint:
    """Answers ``POST /ocsp`` and ``GET /ocsp/...``; hands everything else to ``app``."""

    def __init__(self, app: ASGIApp, host: Any) -> None:
        self.app = app
        self._host = host  # the FastAPI application, whose ``state.pki`` answers
        self._ids = count()
        self._second: dt.datetime | None = None
        self._capped: list[tuple[bytes, bytes]] = []
        self._capped_wire = b""
        self._cap: int | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            path: str = scope["path"]
            if path.startswith("/ocsp"):
                method = scope["method"]
                if path == "/ocsp" and method == "POST":
                    await self._answer(scope, receive, send, ROUTE_POST, None)
                    return
                if path.startswith("/ocsp/") and method == "GET":
                    await self._answer(scope, receive, send, ROUTE_GET, path[6:])
                    return
        await self.app(scope, receive, send)

    def request_id(self, given: bytes) -> str:
        """The caller's ``X-Request-Id`` when sane, else a new one of this process."""
        if 0 < len(given) <= 64 and _ID_CHARACTERS.issuperset(given):
            return given.decode()
        return f"{_ID_PREFIX}{next(self._ids):016x}"

    def reply(self, body: bytes, etag: bytes, rid: str) -> Reply:
        """The answer to one OCSP request (DER ``body``); raises only on an unexpected error."""
        pki: PKI = self._host.state.pki
        answer = pki.ocsp.respond(body)
        rid_header = (b"x-request-id", rid.encode())
        rid_wire = b"x-request-id: %s\r\n" % rid_header[1]
        if not answer.cacheable or answer.next_update is None or answer.this_update is None:
            der = answer.der
            headers = [_CONTENT_TYPE, (b"content-length", str(len(der)).encode()), _NO_STORE, rid_header]
            return Reply(200, headers, wire_headers(headers), der)
        head: _Head | None = answer.memo.get(_MEMO_HEAD)  # type: ignore[assignment]
        if head is None:
            head = answer.memo[_MEMO_HEAD] = _Head(answer)
        now = pki.clock.now()
        cap = self._cap
        if cap is None:
            cap = self._cap = int(pki.settings.duration("ocsp_max_age").total_seconds())
        if (answer.next_update - now).total_seconds() >= cap:
            if now != self._second:
                self._capped, self._second = _cache_headers(cap, now), now
                self._capped_wire = wire_headers(self._capped)
            cache, cache_wire = self._capped, self._capped_wire
        else:
            cache = _cache_headers(max(int((answer.next_update - now).total_seconds()), 0), now)
            cache_wire = wire_headers(cache)
        if etag and etag == head.etag:
            return Reply(304, [*head.validators, *cache, rid_header], head.validators_wire + cache_wire + rid_wire, b"")
        return Reply(200, [*head.entity, *cache, rid_header], head.entity_wire + cache_wire + rid_wire, answer.der)

    def failed(self, method: str, path: str, rid: str) -> Reply:
        """The 500 for an unexpected error, which is logged here."""
        error_log.exception("unhandled error on %s %s", method, path)
        response = internal_error_response(path)
        headers = [*response.raw_headers, (b"x-request-id", rid.encode())]
        return Reply(500, headers, wire_headers(headers), bytes(response.body))

    def too_large(self, path: str, rid: str) -> Reply:
        detail = f"the request body exceeds {MAX_REQUEST_BYTES} bytes"
        response = problem_response(413, "payload-too-large", "Payload too large", detail, path)
        headers = [*response.raw_headers, (b"x-request-id", rid.encode())]
        return Reply(413, headers, wire_headers(headers), bytes(response.body))

    @staticmethod
    def finished(method: str, route: str, path: str, status: int, started: float) -> None:
        """The latency histogram and the access log line of one answer."""
        duration = time.perf_counter() - started
        metrics.observe_http(method, route, status, duration)
        if access_log.isEnabledFor(logging.INFO):
            access_log.info(
                "%s %s %d %.1f ms", method, path, status, duration * 1000,
                extra={"method": method, "path": path, "status": status, "duration_ms": round(duration * 1000, 3)},
            )  # fmt: skip

    async def _answer(self, scope: Scope, receive: Receive, send: Send, route: str, encoded: str | None) -> None:
        started = time.perf_counter()
        given = etag = b""
        length = -1
        for name, value in scope["headers"]:
            if name == b"x-request-id":
                given = value
            elif name == b"if-none-match":
                etag = value
            elif name == b"content-length":
                length = int(value) if value.isdigit() else -1
        rid = self.request_id(given)
        token = request_id.set(rid)
        method, path = scope["method"], scope["path"]
        reply: Reply | None = None
        try:
            if encoded is None:
                body = await self._body(receive, length)
                reply = self.too_large(path, rid) if body is None else self.reply(body, etag, rid)
            else:
                reply = self.reply(decode_get(encoded), etag, rid)
        except Exception:
            reply = self.failed(method, path, rid)
        finally:
            status = 500 if reply is None else reply.status
            if reply is not None:
                await send({"type": _START, "status": reply.status, "headers": reply.headers})
                await send({"type": "http.response.body", "body": reply.body})
            self.finished(method, route, path, status, started)
            request_id.reset(token)

    async def _body(self, receive: Receive, length: int) -> bytes | None:
        """The request body, or ``None`` once it is (or says it will be) over the limit."""
        if length > MAX_REQUEST_BYTES:
            return None
        message = await receive()
        body: bytes = message.get("body", b"")
        if not message.get("more_body", False):
            return body if len(body) <= MAX_REQUEST_BYTES else None
        chunks = [body]
        size = len(body)
        while message.get("more_body", False):
            message = await receive()
            if message["type"] != "http.request":
                return b""  # the client went away; what is answered does not matter
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > MAX_REQUEST_BYTES:
                return None
            chunks.append(chunk)
        return b"".join(chunks)


class _Head:
    """What never changes in the HTTP answer of one pre-signed response."""

    __slots__ = ("entity", "entity_wire", "etag", "validators", "validators_wire")

    def __init__(self, answer: OcspAnswer) -> None:
        assert answer.this_update is not None
        self.etag = answer.etag.encode()
        self.validators = [(b"last-modified", _http_date(answer.this_update)), (b"etag", self.etag)]
        self.entity = [_CONTENT_TYPE, (b"content-length", str(len(answer.der)).encode()), *self.validators]
        self.validators_wire = wire_headers(self.validators)
        self.entity_wire = wire_headers(self.entity)


class OcspFirst(FastAPI):
    """A FastAPI application with :class:`OcspEndpoint` ahead of everything it does per request."""

    def __init__(self, **options: Any) -> None:
        super().__init__(**options)
        self.ocsp_endpoint = OcspEndpoint(super().__call__, self)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await self.ocsp_endpoint(scope, receive, send)
