"""Request ids, one structured log line per request, HTTP latency, and the JSON log format.

:class:`RequestContext` is the outermost middleware: it takes the caller's ``X-Request-Id``
when it is sane (at most 64 characters of ``[A-Za-z0-9._-]``) or makes one, echoes it in the
response, makes it visible to every log record of the request (:data:`request_id`), times the
request into the latency histogram by route *template* (``/api/v1/certificates/{key}``, never
the concrete path, so serials do not become series) and logs ``method path status duration_ms``.

It is also the error boundary: an exception nothing inside answered is logged here, while the request
id is still set, and becomes a 500 problem that carries ``X-Request-Id`` like every other response.
Starlette's own last-resort handler sits outside every middleware, so it would answer after the id
is gone (and without the header).

Nothing secret is logged here: headers (``Authorization`` included) and bodies never are.
:class:`JsonFormatter` writes one JSON object per line; :func:`logging_config` is the
``logging.config.dictConfig`` that ``evpki serve --log-format json|text`` hands to uvicorn.
"""

from __future__ import annotations

import contextvars
import datetime as dt
import json
import logging
import re
import time
import uuid
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api import metrics
from api.problems import internal_error_response

__all__ = ["JsonFormatter", "RequestContext", "logging_config", "request_id"]

request_id: contextvars.ContextVar[str | None] = contextvars.ContextVar("evpki_request_id", default=None)

_SANE_ID = re.compile(r"^[A-Za-z0-9._-]{1,64}$")
_HEADER = b"x-request-id"
_FIELDS = ("method", "path", "status", "duration_ms")
access_log = logging.getLogger("evpki.access")
error_log = logging.getLogger("evpki.api")


def _route_template(scope: Scope) -> str:
    route = scope.get("route")
    template = getattr(route, "path_format", None) or getattr(route, "path", None)
    if isinstance(template, str):
        return template
    path: str = scope.get("path", "")
    if path == "/ocsp":
        return "/ocsp"  # answered by the fast path, ahead of routing
    if path.startswith("/ocsp/"):
        return "/ocsp/{encoded}"
    return "unmatched"  # 404s etc.: one series, whatever was asked


class RequestContext:
    """Outermost ASGI middleware: request id, access log line and latency histogram."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        given = dict(scope.get("headers") or ()).get(_HEADER, b"").decode("latin-1")
        rid = given if _SANE_ID.match(given) else uuid.uuid4().hex
        token = request_id.set(rid)
        started = time.perf_counter()
        status = 500
        response_started = False

        async def send_with_id(message: Message) -> None:
            nonlocal status, response_started
            if message["type"] == "http.response.start":
                status, response_started = int(message["status"]), True
                headers = [(k, v) for k, v in message.get("headers", ()) if k.lower() != _HEADER]
                headers.append((_HEADER, rid.encode()))
                message = {**message, "headers": headers}
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        except Exception:
            # Never a traceback to the client; the log has it, under this request's id.
            error_log.exception("unhandled error on %s %s", scope.get("method", ""), scope.get("path", ""))
            if response_started:
                raise  # half a response went out: only the server can end it (it drops the connection)
            await internal_error_response(scope.get("path", ""))(scope, receive, send_with_id)
        finally:
            duration = time.perf_counter() - started
            method = scope.get("method", "")
            metrics.observe_http(method, _route_template(scope), status, duration)
            access_log.info(
                "%s %s %d %.1f ms",
                method,
                scope.get("path", ""),
                status,
                duration * 1000,
                extra={"method": method, "path": scope.get("path", ""), "status": status,
                       "duration_ms": round(duration * 1000, 3)},
            )  # fmt: skip
            request_id.reset(token)


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, message, request_id and the access fields."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": dt.datetime.fromtimestamp(record.created, dt.UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
            "request_id": getattr(record, "request_id", None) or request_id.get(),
        }
        for field in _FIELDS:
            value = getattr(record, field, None)
            if value is not None:
                entry[field] = value
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry, ensure_ascii=False, default=str)


class TextFormatter(logging.Formatter):
    """The human format, with the request id when there is one."""

    def format(self, record: logging.LogRecord) -> str:
        line = super().format(record)
        rid = request_id.get()
        return f"{line} [{rid}]" if rid else line


def logging_config(log_format: str, level: str) -> dict[str, Any]:
    """A ``dictConfig`` for uvicorn and evpki: ``json`` (JSON lines) or ``text``, on stderr."""
    formatter: dict[str, Any] = (
        {"()": "api.observability.JsonFormatter"}
        if log_format == "json"
        else {"()": "api.observability.TextFormatter", "fmt": "%(asctime)s %(levelname)s %(name)s: %(message)s"}
    )
    level = level.upper()
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {"default": formatter},
        "handlers": {
            "default": {"class": "logging.StreamHandler", "formatter": "default", "stream": "ext://sys.stderr"}
        },
        "loggers": {
            "uvicorn": {"handlers": ["default"], "level": level, "propagate": False},
            "uvicorn.error": {"handlers": ["default"], "level": level, "propagate": False},
            "uvicorn.access": {"handlers": ["default"], "level": level, "propagate": False},
            "evpki": {"handlers": ["default"], "level": level, "propagate": False},
        },
        "root": {"handlers": ["default"], "level": "WARNING"},
    }
