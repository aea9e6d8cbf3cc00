"""``evpki serve``: the REST API, OCSP responder and CRL distribution point on uvicorn."""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated

import typer

from cli.common import guarded, open_pki

__all__ = ["LogFormat", "serve"]


class LogFormat(StrEnum):
    JSON = "json"
    TEXT = "text"


@guarded
def serve(
    host: Annotated[str, typer.Option("--host", help="Interface to bind.")] = "127.0.0.1",
    port: Annotated[int, typer.Option("--port", min=1, max=65535, help="TCP port.")] = 8080,
    workers: Annotated[int, typer.Option("--workers", min=1, help="Worker processes (one per core is right).")] = 1,
    log_level: Annotated[str, typer.Option("--log-level", help="uvicorn log level.")] = "info",
    log_format: Annotated[
        LogFormat,
        typer.Option(
            "--log-format",
            help="json: one JSON object per line (time, level, logger, message, request_id, method, path, "
            "status, duration_ms); text: for people.",
        ),
    ] = LogFormat.JSON,
) -> None:
    """Serve the API (/api/v1, docs at /docs), OCSP (/ocsp) and CRLs (/crl/<ca>.crl) until interrupted.

    Workers share state only through the database; settings come from the EVPKI_* environment.
    """
    import uvicorn

    from api.observability import logging_config

    open_pki().close()  # migrate once and fail early (exit 7) if the database is unreachable
    uvicorn.run(
        "api.app:app_from_environment",
        factory=True,
        host=host,
        port=port,
        workers=workers,
        loop="uvloop",
        http="httptools",
        log_level=log_level,
        log_config=logging_config(log_format.value, log_level),
        access_log=False,
        proxy_headers=False,
    )
