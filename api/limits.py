"""Request body limits, enforced while the body streams in (a lying Content-Length does not help).

JSON and OCSP bodies are small by nature; only the firmware upload may be large, and it has
its own limit (``firmware_max_bytes``). Over the limit the client gets 413 problem+json and
nothing reaches a handler.

A chunked body (no Content-Length) is counted as it arrives: the read that crosses the limit fails,
and whatever the application then answers -- FastAPI turns any failed JSON read into a 400 -- is
replaced by the same 413, so both ways of sending too much get one answer (RFC 9110 §15.5.14).
"""

from __future__ import annotations

import re

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api.problems import PayloadTooLarge, problem_response

__all__ = ["BodyLimit"]

DEFAULT_LIMIT = 64 * 1024


class BodyLimit:
    def __init__(
        self, app: ASGIApp, *, default: int = DEFAULT_LIMIT, large: dict[str | re.Pattern[str], int] | None = None
    ) -> None:
        self.app = app
        self.default = default
        self.large = large or {}

    def _limit(self, path: str) -> int:
        for prefix, limit in self.large.items():
            # A path prefix, or a pattern for a large upload inside a resource (a station's firmware).
            if prefix.fullmatch(path) if isinstance(prefix, re.Pattern) else path.startswith(prefix):
                return limit
        return self.default

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = self._limit(scope["path"])
        for name, value in scope.get("headers", ()):
            if name == b"content-length" and value.isdigit() and int(value) > limit:
                await self._refuse(scope, receive, send, limit)
                return
        seen = 0
        exceeded = started = refused = False

        async def counting_receive() -> Message:
            nonlocal seen, exceeded
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > limit:
                    exceeded = True
                    raise PayloadTooLarge(f"the request body exceeds {limit} bytes")
            return message

        async def guarded_send(message: Message) -> None:
            nonlocal started, refused
            if exceeded and not started:
                # The application's answer to a failed read is dropped for the 413, start and body alike.
                if not refused:
                    refused = True
                    await self._refuse(scope, receive, send, limit)
                return
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, counting_receive, guarded_send)
        except PayloadTooLarge:
            if started:
                raise
        if exceeded and not refused and not started:
            await self._refuse(scope, receive, send, limit)

    async def _refuse(self, scope: Scope, receive: Receive, send: Send, limit: int) -> None:
        response = problem_response(
            413, "payload-too-large", "Payload too large", f"the request body exceeds {limit} bytes", scope["path"]
        )
        await response(scope, receive, send)
