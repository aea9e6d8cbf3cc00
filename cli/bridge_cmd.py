"""``evpki bridge``: the OCPP-J station gateway (security profiles 3 and 2, optional upstream CSMS)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
from pathlib import Path
from typing import Annotated

import typer

from cli.common import fail, guarded, open_pki
from pki.runtime import settle_gc

__all__ = ["bridge"]


@guarded
def bridge(
    host: Annotated[str, typer.Option("--host", help="Interface to bind (both listeners).")] = "127.0.0.1",
    port: Annotated[
        int, typer.Option("--port", min=0, max=65535, help="Security profile 3 (mutual TLS) port; 0 disables it.")
    ] = 8443,
    basic_port: Annotated[
        int,
        typer.Option("--basic-port", min=0, max=65535, help="Security profile 2 (TLS + Basic auth) port; 0: off."),
    ] = 8444,
    combined_port: Annotated[
        int,
        typer.Option(
            "--combined-port",
            min=0,
            max=65535,
            help="One port for profiles 2 and 3 (client certificate optional: mTLS or Basic auth); 0: off.",
        ),
    ] = 0,
    server_name: Annotated[
        str | None,
        typer.Option(
            "--server-name", help="FQDN stations connect to; CN and SAN of the server certificates (default: --host)."
        ),
    ] = None,
    upstream: Annotated[
        str | None,
        typer.Option(
            "--upstream",
            help="ws(s)://csms.example/ocpp: relay every message the bridge does not own to {URL}/{identity}.",
        ),
    ] = None,
    upstream_ca: Annotated[
        Path | None, typer.Option("--upstream-ca", help="PEM CA bundle that verifies a wss:// upstream.")
    ] = None,
    upstream_cert: Annotated[
        Path | None,
        typer.Option(
            "--upstream-cert", help="PEM client certificate (chain) the bridge presents to a wss:// upstream."
        ),
    ] = None,
    upstream_key: Annotated[
        Path | None,
        typer.Option("--upstream-key", help="Its PEM key (unencrypted, or encrypted with EVPKI_KEY_PASSPHRASE)."),
    ] = None,
    server_cert_dir: Annotated[
        Path | None,
        typer.Option("--server-cert-dir", help="Server keys and certificates (default: EVPKI_HOME/bridge)."),
    ] = None,
    renewal_interval: Annotated[
        float, typer.Option("--renewal-interval", min=0.1, help="Seconds between renewal checks of connected stations.")
    ] = 3600.0,
    call_timeout: Annotated[
        float, typer.Option("--call-timeout", min=1.0, help="Seconds a station has to answer a call.")
    ] = 30.0,
    call_poll_interval: Annotated[
        float,
        typer.Option(
            "--call-poll-interval",
            min=0.05,
            max=60.0,
            help="Seconds between looks for new operator calls (`evpki station …`, REST) where nothing "
            "announces them: SQLite (a look costs a query only after a commit), PostgreSQL while not listening.",
        ),
    ] = 0.5,
    call_notifications: Annotated[
        bool,
        typer.Option(
            "--call-notifications/--no-call-notifications",
            help="Hear of new operator calls at once (PostgreSQL LISTEN/NOTIFY; SQLite: look only after a commit); "
            "off: query every --call-poll-interval (e.g. behind a connection pooler that drops LISTEN).",
        ),
    ] = True,
    login_failures_per_minute: Annotated[
        int,
        typer.Option(
            "--login-failures-per-minute",
            min=1,
            help="Refused connection attempts per remote address and minute, counted across every bridge process "
            "on the database, before further attempts get HTTP 429 unchecked.",
        ),
    ] = 30,
    log_level: Annotated[str, typer.Option("--log-level", help="debug, info, warning or error.")] = "info",
) -> None:
    """Run the OCPP station gateway until interrupted (SIGINT/SIGTERM close every connection with 1001).

    Stations connect to wss://HOST:PORT/<any path>/<identity> with subprotocol ocpp2.1, ocpp2.0.1 or ocpp1.6 and must
    be registered (`evpki station add`). The bridge answers the certificate messages itself (SignCertificate,
    Get15118EVCertificate, GetCertificateStatus, GetCertificateChainStatus, SecurityEventNotification, 1.6 PnC
    DataTransfer), re-sends pending deliveries on reconnect and triggers renewals; without --upstream it also answers
    BootNotification, Heartbeat and StatusNotification so stations can enroll in a standalone deployment.
    """
    from ocpp_bridge.gateway import Bridge, BridgeConfig

    if upstream is not None and not upstream.startswith(("ws://", "wss://")):
        raise fail("--upstream must be a ws:// or wss:// URL", 2)
    if (upstream_cert is None) != (upstream_key is None):
        raise fail("--upstream-cert and --upstream-key go together", 2)
    if upstream_cert is not None and not (upstream or "").startswith("wss://"):
        raise fail("--upstream-cert needs a wss:// --upstream", 2)
    if port == 0 and basic_port == 0 and combined_port == 0:
        raise fail("both listeners are disabled (--port 0 and --basic-port 0)", 2)
    logging.basicConfig(level=log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    config = BridgeConfig(
        host=host,
        port=port or None,
        basic_port=basic_port or None,
        combined_port=combined_port or None,
        server_name=server_name,
        upstream=upstream,
        upstream_ca=upstream_ca,
        upstream_cert=upstream_cert,
        upstream_key=upstream_key,
        certificate_dir=server_cert_dir,
        renewal_interval=renewal_interval,
        call_timeout=call_timeout,
        call_poll_interval=call_poll_interval,
        call_notifications=call_notifications,
        login_failures_per_minute=login_failures_per_minute,
    )
    pki = open_pki()

    async def run() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGINT, signal.SIGTERM):
            with contextlib.suppress(NotImplementedError):
                loop.add_signal_handler(signum, stop.set)
        async with Bridge(pki, config):
            settle_gc()  # listening: no full collection walks start-up state again
            await stop.wait()

    try:
        import uvloop

        loop_factory = uvloop.new_event_loop
    except ImportError:  # pragma: no cover - uvloop ships with uvicorn[standard]
        loop_factory = None
    try:
        with asyncio.Runner(loop_factory=loop_factory) as runner:
            runner.run(run())
    except OSError as error:
        raise fail(f"cannot serve on {host}: {error.strerror or error}", 7) from None
    finally:
        pki.close()
