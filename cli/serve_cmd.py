"""``evpki serve``: the REST API, OCSP responder and CRL distribution point on uvicorn."""

from __future__ import annotations

import atexit
import logging.config
import multiprocessing
import signal
import socket
import sys
from enum import StrEnum
from typing import TYPE_CHECKING, Annotated, Any

import typer

from cli.common import guarded, open_pki

if TYPE_CHECKING:
    from api.est import EstServer

__all__ = ["LogFormat", "serve"]


class LogFormat(StrEnum):
    JSON = "json"
    TEXT = "text"


@guarded
def serve(
    host: Annotated[str, typer.Option("--host", help="Interface to bind.")] = "127.0.0.1",
    port: Annotated[int, typer.Option("--port", min=1, max=65535, help="TCP port.")] = 8080,
    workers: Annotated[
        int,
        typer.Option(
            "--workers",
            min=1,
            help="Worker processes (one per core is right); each listens on its own SO_REUSEPORT socket, "
            "so the kernel spreads connections evenly.",
        ),
    ] = 1,
    log_level: Annotated[str, typer.Option("--log-level", help="uvicorn log level.")] = "info",
    log_format: Annotated[
        LogFormat,
        typer.Option(
            "--log-format",
            help="json: one JSON object per line (time, level, logger, message, request_id, method, path, "
            "status, duration_ms); text: for people.",
        ),
    ] = LogFormat.JSON,
    est_port: Annotated[
        int | None,
        typer.Option(
            "--est-port",
            min=0,
            max=65535,
            help="Also serve EST enrollment (RFC 7030) over TLS on this port (e.g. 8443): "
            "/.well-known/est/cacerts, /simpleenroll, /simplereenroll, per CA under /.well-known/est/<CA id>/, "
            "and the OPCP paths. Client certificates are optional at the TLS layer (a first enrollment may use "
            "HTTP Basic with `evpki est secret add`). Off by default.",
        ),
    ] = None,
    est_server_name: Annotated[
        str,
        typer.Option(
            "--est-server-name",
            help="FQDN in the EST listener's server certificates (csms-server profile from cso-sub, 24 h, "
            "rotated at half-life); clients must connect by this name.",
        ),
    ] = "localhost",
) -> None:
    """Serve the API (/api/v1, docs at /docs), OCSP (/ocsp) and CRLs (/crl/<ca>.crl) until interrupted.

    With --est-port, also EST (RFC 7030) on a TLS listener of its own, in this process next to the
    API workers (see `evpki est --help`). Workers share state only through the database; settings
    come from the EVPKI_* environment (EVPKI_EST_BOOTSTRAP_CAS: CAs whose certificates may
    authenticate a first EST enrollment).
    """
    import uvicorn

    from api.observability import logging_config

    open_pki().close()  # migrate once and fail early (exit 7) if the database is unreachable
    if est_port is not None:
        # The EST listener logs before uvicorn configures logging; it stops when this process exits.
        logging.config.dictConfig(logging_config(log_format.value, log_level))
        _start_est(host, est_port, est_server_name, log_level)
    options: dict[str, Any] = {
        "factory": True,
        "host": host,
        "port": port,
        "loop": "uvloop",
        "http": "api.ocsp_protocol:OcspHttpToolsProtocol",  # httptools, with /ocsp answered without ASGI
        "log_level": log_level,
        "log_config": logging_config(log_format.value, log_level),
        "access_log": False,
        "proxy_headers": False,
    }
    if workers == 1:
        uvicorn.run(_APP, **options)
        return
    # uvicorn's own workers share one listening socket, and whichever wakes first takes the next
    # connection; with a socket each (SO_REUSEPORT) the kernel hashes connections across them.
    context = multiprocessing.get_context("spawn")
    processes = [context.Process(target=_reuse_port_worker, args=(options,), daemon=True) for _ in range(workers)]
    for process in processes:
        process.start()
    stopping = False

    def stop(_signum: int, _frame: object) -> None:
        nonlocal stopping
        stopping = True
        for process in processes:
            if process.is_alive():
                process.terminate()  # SIGTERM: uvicorn finishes in-flight requests

    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, stop)
    while all(process.is_alive() for process in processes) and not stopping:
        processes[0].join(0.5)
    stop(0, None)  # one worker gone (or asked to stop): the others go too
    for process in processes:
        process.join()


_APP = "api.app:app_from_environment"


def _reuse_port_worker(options: dict[str, Any]) -> None:
    import uvicorn

    family = socket.AF_INET6 if ":" in options["host"] else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    sock.bind((options["host"], options["port"]))
    sock.set_inheritable(True)
    uvicorn.Server(uvicorn.Config(_APP, **options)).run(sockets=[sock])


def _start_est(host: str, port: int, server_name: str, log_level: str) -> EstServer:
    from api.est import EstServer

    pki = open_pki()
    server = EstServer(pki, host=host, port=port, server_name=server_name, log_level=log_level)
    try:
        server.start()
    except BaseException:
        pki.close()
        raise
    # uvicorn re-raises the signal that stopped it once it is done: exit (and run the atexit hook)
    # instead of dying on SIGTERM's default action, so the EST listener closes cleanly too.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    atexit.register(_stop_est, server)
    return server


def _stop_est(server: EstServer) -> None:
    server.stop()
    server.pki.close()
