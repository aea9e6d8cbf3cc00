"""The OCPP-J station gateway behind ``evpki bridge``: WebSocket listeners, admission, sessions, monitors.

Two listeners (OCPP A00.FR.006 allows one per security profile), and optionally a third that
serves both (``combined_port``: a client certificate is requested but optional -- presented, the
profile 3 checks; absent, Basic auth), for stations that keep their URL across an upgrade (A05):

- *profile 3* (``port``): mutual TLS. The TLS layer verifies the client certificate's path to the
  CSO root; before the WebSocket upgrade, ``pki.stations.admit_certificate`` checks
  it against the PKI and the registry (A00.FR.403-405, A00.FR.702/705).
- *profile 2* (``basic_port``): server-authenticated TLS plus HTTP Basic auth, checked before the
  upgrade (A00.FR.201-206).

A refused station gets an HTTP 401/403 instead of ``101 Switching Protocols`` and the refusal is
recorded as a security event in the audit log (A00.FR.408), at most a few per minute per remote
address so that nobody can flood the log. The station identity is the last URL path segment
(percent-decoded, [P4-201] §3.1.1); the subprotocol is the first of the station's offers that we
speak (``ocpp2.1``, ``ocpp2.0.1``, ``ocpp1.6``), and an offer without one is refused (HTTP 400).

Once upgraded, a :class:`~ocpp_bridge.session.StationSession` routes the frames; with an upstream
CSMS it opens ``{upstream}/{identity}`` with the same subprotocol and relays what the certificate
core does not own. A monitor asks the core for renewal triggers of every connected station, and
the CSMS server certificates are re-issued while running (A00.FR.701 fast expiration).

Everything is one asyncio process: no thread per connection, blocking PKI calls in worker threads.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import hashlib
import json
import logging
import ssl
import weakref
from dataclasses import dataclass
from http import HTTPStatus
from ipaddress import ip_address
from pathlib import Path
from typing import Any
from urllib.parse import quote, unquote, urlsplit

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from websockets.asyncio.client import ClientConnection, connect
from websockets.asyncio.server import Server, ServerConnection, serve
from websockets.datastructures import Headers
from websockets.exceptions import InvalidHandshake, NegotiationError
from websockets.http11 import Request, Response
from websockets.typing import Subprotocol

from ocpp_bridge.core import CertificateService, FollowUp
from ocpp_bridge.credentials import parse_basic_authorization
from ocpp_bridge.session import SessionOptions, StationSession
from ocpp_bridge.tls import server_context
from pki import PKI, InvalidInput
from pki.stations import SERVER_CERTIFICATE_VALIDITY, Admission, CallFeed, Refusal, parse_identity

__all__ = [
    "STATION_CERTIFICATE_HEADER",
    "SUBPROTOCOLS",
    "Bridge",
    "BridgeConfig",
    "choose_subprotocol",
    "identity_from_path",
]

log = logging.getLogger("evpki.bridge")

# OCPP-J subprotocol → the core's version name ([P4-201] §3.1.2, [P4-21]); our preference order.
SUBPROTOCOLS: dict[str, str] = {"ocpp2.1": "2.1", "ocpp2.0.1": "2.0.1", "ocpp1.6": "1.6"}
# Sent to the upstream with each relayed profile-3 station: the SHA-256 (hex) of its verified certificate.
STATION_CERTIFICATE_HEADER = "X-EVPKI-Station-Certificate-SHA256"


@dataclass(frozen=True, slots=True)
class BridgeConfig:
    host: str = "127.0.0.1"
    port: int | None = 8443  # security profile 3 (mutual TLS); None: no such listener; 0: any free port
    basic_port: int | None = 8444  # security profile 2 (TLS + Basic auth)
    # Profiles 2 and 3 on one address: a client certificate is asked for but optional (presented:
    # profile 3 admission; absent: Basic auth), as an upgrade (A05) that keeps the station's URL needs.
    combined_port: int | None = None
    server_name: str | None = None  # FQDN in the server certificates (A00.FR.510); default from host
    upstream: str | None = None  # ws(s)://csms.example/ocpp: relay what the core does not own
    upstream_ca: Path | None = None  # CA bundle to verify a wss:// upstream (default: system store)
    upstream_cert: Path | None = None  # the bridge's client certificate (PEM chain) for a wss:// upstream
    upstream_key: Path | None = None  # its key (PEM; encrypted with the key passphrase, or not at all)
    certificate_dir: Path | None = None  # server keys and certificates (default: EVPKI_HOME/bridge)
    server_certificate_validity: dt.timedelta = SERVER_CERTIFICATE_VALIDITY
    server_certificate_check: float = 600.0  # seconds between server-certificate freshness checks
    renewal_interval: float = 3600.0  # seconds between renewal checks of connected stations
    # Seconds between looks for new operator calls where nothing announces them (SQLite; PostgreSQL while
    # its listener is down): their latency bound there. PostgreSQL NOTIFY wakes the bridge at once.
    call_poll_interval: float = 0.5
    # Off: look every call_poll_interval whatever the database (e.g. behind a pooler that drops LISTEN).
    call_notifications: bool = True
    call_timeout: float = 30.0  # seconds a station has to answer a CALL we send
    trigger_cooldown: float = 600.0  # a renewal trigger is not repeated sooner for a station
    heartbeat_interval: int = 300  # BootNotification interval when there is no upstream
    max_frame_bytes: int = 65536  # larger frames close the connection with 1009
    ping_interval: float | None = 60.0
    ping_timeout: float | None = 30.0
    open_timeout: float = 30.0  # the opening handshake, including admission
    backlog: int = 1024
    login_failures_per_minute: int = 30  # refused attempts per address and minute before 429 without a check
    security_events_per_minute: int = 6  # refusals recorded as security events per address and minute

    def resolved_server_name(self) -> str:
        if self.server_name:
            return self.server_name
        try:
            ip_address(self.host)
        except ValueError:
            return self.host
        return "localhost"  # a certificate names a host, and clients on this machine reach it so


@dataclass(frozen=True, slots=True)
class _Admitted:
    identity: str
    version: str
    admission: Admission
    authorization: str | None = None


def identity_from_path(path: str) -> str:
    """The station identity: the last non-empty path segment, percent-decoded ([P4-201] §3.1.1)."""
    segments = [segment for segment in urlsplit(path).path.split("/") if segment]
    if not segments:
        raise InvalidInput("the URL names no station identity")
    return parse_identity(unquote(segments[-1]))


def _offered(headers: Headers) -> list[str]:
    return [
        item.strip() for value in headers.get_all("Sec-WebSocket-Protocol") for item in value.split(",") if item.strip()
    ]


def choose_subprotocol(offered: list[str]) -> str | None:
    """The station's most preferred offer that we speak (OCPP-J: the client lists them in its order)."""
    return next((item for item in offered if item in SUBPROTOCOLS), None)


class Bridge:
    """The gateway: ``async with Bridge(pki, config) as bridge: await bridge.serve_forever()``."""

    def __init__(
        self, pki: PKI, config: BridgeConfig | None = None, *, service: CertificateService | None = None
    ) -> None:
        self.pki = pki
        self.config = config or BridgeConfig()
        self.service = service or CertificateService(pki)
        self.sessions: dict[str, StationSession] = {}
        self._admitted: weakref.WeakKeyDictionary[ServerConnection, _Admitted] = weakref.WeakKeyDictionary()
        self._cooldowns: dict[str, dict[object, float]] = {}
        self._servers: dict[str, Server] = {}
        self._contexts: list[ssl.SSLContext] = []
        self._tasks: list[asyncio.Task[None]] = []
        self._background: set[asyncio.Task[None]] = set()
        self._upstream_context: ssl.SSLContext | None = None
        self._station_issuers: frozenset[str] = frozenset()
        self._mtls_context: ssl.SSLContext | None = None
        self._optional_context: ssl.SSLContext | None = None
        self._trusted_cas: list[x509.Certificate] = []
        self._call_feed: CallFeed | None = None
        self._call_wake = asyncio.Event()
        directory = self.config.certificate_dir or pki.settings.home / "bridge"
        self.server_certificates = pki.stations.server_certificates(
            server_name=self.config.resolved_server_name(),
            directory=directory,
            validity=self.config.server_certificate_validity,
        )

    # -- lifecycle ---------------------------------------------------------------------------

    async def start(self) -> None:
        if (self.config.upstream or "").startswith("wss://"):
            self._upstream_ssl()  # a missing or wrong client certificate fails here, not per station
        await asyncio.to_thread(self.server_certificates.refresh)
        self._station_issuers = await asyncio.to_thread(self.pki.stations.station_issuer_ids)
        common: dict[str, Any] = {
            "select_subprotocol": self._select_subprotocol,
            "subprotocols": [Subprotocol(name) for name in SUBPROTOCOLS],
            "max_size": self.config.max_frame_bytes,
            "max_queue": 4,  # frames buffered per connection: small, a station sends one CALL at a time
            "compression": None,  # A00.FR.424 spirit, and per-connection zlib state costs ~300 KiB
            "ping_interval": self.config.ping_interval,
            "ping_timeout": self.config.ping_timeout,
            "open_timeout": self.config.open_timeout,
            "server_header": None,
            "backlog": self.config.backlog,
        }
        if self.config.port is not None:
            cas = await asyncio.to_thread(self.pki.stations.client_ca_certificates)
            context = server_context(self.server_certificates, client_cas=cas)
            self._contexts.append(context)
            self._mtls_context, self._trusted_cas = context, list(cas)
            self._servers["mtls"] = await serve(
                self._handler,
                self.config.host,
                self.config.port,
                ssl=context,
                process_request=self._process_mtls,
                **common,
            )
        if self.config.combined_port is not None:
            cas = await asyncio.to_thread(self.pki.stations.client_ca_certificates)
            context = server_context(self.server_certificates, client_cas=cas, optional=True)
            self._contexts.append(context)
            self._optional_context = context
            if not self._trusted_cas:
                self._trusted_cas = list(cas)
            self._servers["combined"] = await serve(
                self._handler,
                self.config.host,
                self.config.combined_port,
                ssl=context,
                process_request=self._process_combined,
                **common,
            )
        if self.config.basic_port is not None:
            context = server_context(self.server_certificates, client_cas=None)
            self._contexts.append(context)
            self._servers["basic"] = await serve(
                self._handler,
                self.config.host,
                self.config.basic_port,
                ssl=context,
                process_request=self._process_basic,
                **common,
            )
        self._tasks.append(asyncio.create_task(self._renewal_monitor(), name="evpki-renewal-monitor"))
        self._tasks.append(asyncio.create_task(self._certificate_monitor(), name="evpki-server-certificates"))
        if self.config.call_notifications:
            self._call_feed = await asyncio.to_thread(self._open_call_feed, asyncio.get_running_loop())
        self._tasks.append(asyncio.create_task(self._call_monitor(), name="evpki-operator-calls"))
        log.info("bridge listening on %s", ", ".join(f"{name} port {port}" for name, port in self.ports.items()))

    @property
    def ports(self) -> dict[str, int]:
        """The bound port of each listener (``mtls``, ``basic``); useful with port 0."""
        return {name: server.sockets[0].getsockname()[1] for name, server in self._servers.items() if server.sockets}

    async def stop(self) -> None:
        """Stop accepting, close every station connection (1001) and wait for their sessions to end."""
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks.clear()
        if self._call_feed is not None:
            await asyncio.to_thread(self._call_feed.close)
            self._call_feed = None
        for server in self._servers.values():
            server.close(close_connections=True)
        for server in self._servers.values():
            await server.wait_closed()
        self._servers.clear()

    async def serve_forever(self) -> None:
        await asyncio.gather(*(server.serve_forever() for server in self._servers.values()))

    async def __aenter__(self) -> Bridge:
        await self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.stop()

    # -- admission (before the upgrade) ----------------------------------------------------------

    def _select_subprotocol(self, connection: ServerConnection, subprotocols: Any) -> Subprotocol | None:
        chosen = choose_subprotocol(list(subprotocols))
        if chosen is None:
            raise NegotiationError("no supported OCPP subprotocol (ocpp2.1, ocpp2.0.1, ocpp1.6)")
        return Subprotocol(chosen)

    def _preflight(self, connection: ServerConnection, request: Request) -> tuple[str, str] | Response:
        try:
            identity = identity_from_path(request.path)
        except InvalidInput:
            return connection.respond(HTTPStatus.NOT_FOUND, "No station identity in the URL.\n")
        subprotocol = choose_subprotocol(_offered(request.headers))
        if subprotocol is None:
            # websockets would go on without a subprotocol; OCPP-J needs one (A00 / [P4-201] §3.1.2).
            return connection.respond(HTTPStatus.BAD_REQUEST, "Offer ocpp2.1, ocpp2.0.1 or ocpp1.6.\n")
        return identity, SUBPROTOCOLS[subprotocol]

    async def _process_mtls(self, connection: ServerConnection, request: Request) -> Response | None:
        checked = self._preflight(connection, request)
        if isinstance(checked, Response):
            return checked
        identity, version = checked
        ssl_object = connection.transport.get_extra_info("ssl_object")
        der = ssl_object.getpeercert(binary_form=True) if ssl_object is not None else None
        result = await asyncio.to_thread(
            self.pki.stations.admit_certificate, identity, der, station_issuers=self._station_issuers
        )
        return await self._decide(connection, identity, version, result, None, basic=False)

    async def _process_combined(self, connection: ServerConnection, request: Request) -> Response | None:
        """Profiles 2 and 3 on one port: a verified client certificate means profile 3, none means Basic auth."""
        ssl_object = connection.transport.get_extra_info("ssl_object")
        if ssl_object is not None and ssl_object.getpeercert(binary_form=True):
            return await self._process_mtls(connection, request)
        return await self._process_basic(connection, request)

    async def _process_basic(self, connection: ServerConnection, request: Request) -> Response | None:
        checked = self._preflight(connection, request)
        if isinstance(checked, Response):
            return checked
        identity, version = checked
        authorization = request.headers.get("Authorization")
        result: Admission | Refusal
        if authorization is None:
            result = Refusal(HTTPStatus.UNAUTHORIZED, "", "no credentials")
        elif (
            await asyncio.to_thread(self.pki.stations.connection_failures, _address(connection))
            >= self.config.login_failures_per_minute
        ):
            # Password guessing costs us an scrypt per try: past the budget, refuse without one.
            result = Refusal(HTTPStatus.TOO_MANY_REQUESTS, "", "too many failed attempts from this address")
        else:
            credentials = parse_basic_authorization(authorization)
            result = await asyncio.to_thread(self.pki.stations.admit_password, identity, credentials)
        return await self._decide(connection, identity, version, result, authorization, basic=True)

    async def _decide(
        self,
        connection: ServerConnection,
        identity: str,
        version: str,
        result: Admission | Refusal,
        authorization: str | None,
        *,
        basic: bool,
    ) -> Response | None:
        if isinstance(result, Admission):
            self._admitted[connection] = _Admitted(identity, version, result, authorization)
            return None
        address = _address(connection)
        log.warning("refused %s from %s: %s", identity, address, result.reason)
        # Security events (A00.FR.408), rate-limited per address; a missing credential is no event.
        # Counted in the database: the budget holds across every bridge process on it.
        failures = (
            await asyncio.to_thread(self.pki.stations.add_connection_failure, address) if result.event_type else 0
        )
        if result.event_type and failures <= self.config.security_events_per_minute:
            await asyncio.to_thread(
                self.pki.stations.record_security_event,
                station=identity,
                event_type=result.event_type,
                timestamp=self.pki.clock.now().isoformat(),
                tech_info=f"connection refused from {address}: {result.reason}",
                actor="bridge",
            )
        text = {401: "Unauthorized.\n", 403: "Forbidden.\n", 429: "Too many failed attempts.\n"}
        response = connection.respond(result.status, text.get(result.status, "Refused.\n"))
        if result.status == HTTPStatus.UNAUTHORIZED and basic:
            response.headers["WWW-Authenticate"] = 'Basic realm="OCPP", charset="UTF-8"'
        return response

    # -- sessions --------------------------------------------------------------------------------

    async def _handler(self, connection: ServerConnection) -> None:
        admitted = self._admitted.pop(connection, None)
        if admitted is None:  # cannot happen: process_request admitted every upgraded connection
            await connection.close(1011, "not admitted")
            return
        identity, version = admitted.identity, admitted.version
        upstream: ClientConnection | None = None
        if self.config.upstream:
            upstream = await self._connect_upstream(admitted)
            if upstream is None:
                # 1011: the station retries with back-off, as after any server failure.
                await connection.close(1011, "upstream CSMS unavailable")
                return
        session = StationSession(
            connection=connection,
            identity=identity,
            version=version,
            service=self.service,
            options=SessionOptions(
                call_timeout=self.config.call_timeout,
                heartbeat_interval=self.config.heartbeat_interval,
                trigger_cooldown=self.config.trigger_cooldown,
            ),
            certificate=admitted.admission.certificate,
            upstream=upstream,
            cooldowns=self._cooldowns.setdefault(identity, {}),
        )
        previous = self.sessions.get(identity)
        self.sessions[identity] = session
        if previous is not None:
            # One connection per identity: the newer one wins (a station reconnecting after A02 renewal).
            closing = asyncio.create_task(previous.close(1000, "replaced by a newer connection"))
            self._background.add(closing)
            closing.add_done_callback(self._background.discard)
        log.info("%s connected (OCPP %s)", identity, version)
        try:
            await session.run(after=previous)
        finally:
            if self.sessions.get(identity) is session:
                del self.sessions[identity]
            log.info("%s disconnected", identity)

    def _upstream_ssl(self) -> ssl.SSLContext:
        """One context for every station's upstream connection: the upstream's CA, our client certificate."""
        if self._upstream_context is None:
            cafile = str(self.config.upstream_ca) if self.config.upstream_ca else None
            context = ssl.create_default_context(cafile=cafile)
            context.minimum_version = ssl.TLSVersion.TLSv1_2
            if self.config.upstream_cert is not None:
                # Mutual TLS to the upstream: it authenticates the bridge, and so trusts the headers it sends.
                context.load_cert_chain(
                    self.config.upstream_cert, self.config.upstream_key, password=self.pki.settings.passphrase()
                )
            self._upstream_context = context
        return self._upstream_context

    async def _connect_upstream(self, admitted: _Admitted) -> ClientConnection | None:
        assert self.config.upstream is not None
        url = f"{self.config.upstream.rstrip('/')}/{quote(admitted.identity, safe='')}"
        subprotocol = next(name for name, version in SUBPROTOCOLS.items() if version == admitted.version)
        context: ssl.SSLContext | None = None
        if url.startswith("wss://"):
            context = self._upstream_ssl()
        headers = {"Authorization": admitted.authorization} if admitted.authorization else {}
        if admitted.admission.certificate is not None:
            # Which station the bridge relays, beyond the identity in the URL: the SHA-256 of the client
            # certificate it verified (profile 3), so the upstream can tie the connection to it.
            fingerprint = admitted.admission.certificate.fingerprint(hashes.SHA256()).hex()
            headers[STATION_CERTIFICATE_HEADER] = fingerprint
        try:
            upstream = await connect(
                url,
                ssl=context,
                subprotocols=[Subprotocol(subprotocol)],
                additional_headers=headers or None,
                max_size=self.config.max_frame_bytes,
                compression=None,
                open_timeout=self.config.open_timeout,
                ping_interval=self.config.ping_interval,
                ping_timeout=self.config.ping_timeout,
            )
        except (OSError, InvalidHandshake, TimeoutError) as error:
            log.warning("upstream %s refused %s: %s", url, admitted.identity, error)
            return None
        if upstream.subprotocol != subprotocol:
            log.warning("upstream %s did not agree to %s for %s", url, subprotocol, admitted.identity)
            await upstream.close()
            return None
        return upstream

    # -- monitors ----------------------------------------------------------------------------------

    async def check_renewals(self) -> None:
        """Ask the core once, for every connected station, whether a renewal trigger is due (A02)."""
        for session in list(self.sessions.values()):
            try:
                due = await asyncio.to_thread(self.service.renewal_due, session.version, session.identity)
                if due:
                    due = await asyncio.to_thread(self._claim_triggers, session.identity, due)
                session.enqueue(due)
            except Exception:
                log.exception("renewal check of %s failed", session.identity)

    async def deliver_calls(self) -> int:
        """Send the operator calls filed (by any process) for stations connected here; how many went out."""
        sessions = dict(self.sessions)
        if not sessions:
            return 0
        due = await asyncio.to_thread(
            self.service.operator_calls.due,
            {identity: session.version for identity, session in sessions.items()},
            {identity: set(session.sent_calls) for identity, session in sessions.items()},
        )
        for identity, follow_up in due:
            session = self.sessions.get(identity)
            if session is not None:
                session.enqueue([follow_up])
        return len(due)

    def _open_call_feed(self, loop: asyncio.AbstractEventLoop) -> CallFeed | None:
        def filed(stations: frozenset[str] | None) -> None:  # in the feed's thread
            with contextlib.suppress(RuntimeError):  # the loop is gone: the bridge has stopped
                loop.call_soon_threadsafe(self._calls_filed, stations)

        try:
            return self.pki.station_calls.feed(filed)
        except Exception as exc:  # e.g. an in-memory SQLite database: every poll interval looks
            log.warning("no operator-call feed (%s); looking every %g s", exc, self.config.call_poll_interval)
            return None

    def _calls_filed(self, stations: frozenset[str] | None) -> None:
        if stations is None or not stations.isdisjoint(self.sessions):
            self._call_wake.set()

    async def _call_monitor(self) -> None:
        # A call filed through any API or CLI process reaches a station connected here at once on
        # PostgreSQL (NOTIFY), within call_poll_interval on SQLite, whichever bridge process holds it.
        while True:
            try:
                # Not asyncio.wait_for: on 3.11 it drops a cancellation that arrives with the wake-up,
                # and the monitor then outlived Bridge.stop() (tests/ocpp_bridge/test_shutdown_races.py).
                async with asyncio.timeout(self.config.call_poll_interval):
                    await self._call_wake.wait()
            except TimeoutError:
                feed = self._call_feed
                if feed is not None and not feed.due():
                    continue
            self._call_wake.clear()
            try:
                await self.deliver_calls()
            except Exception:
                log.exception("looking for operator calls failed")

    def _claim_triggers(self, identity: str, follow_ups: tuple[FollowUp, ...]) -> tuple[FollowUp, ...]:
        """The triggers not sent to ``identity`` within the cool-down by any bridge process (claimed now)."""
        claimed = []
        for follow_up in follow_ups:
            digest = hashlib.sha256(json.dumps([follow_up.action, follow_up.payload], sort_keys=True).encode())
            if self.pki.stations.claim_trigger(identity, digest.hexdigest()[:32], self.config.trigger_cooldown):
                claimed.append(follow_up)
        return tuple(claimed)

    async def _renewal_monitor(self) -> None:
        while True:
            await asyncio.sleep(self.config.renewal_interval)
            await self.check_renewals()

    async def _certificate_monitor(self) -> None:
        while True:
            await asyncio.sleep(self.config.server_certificate_check)
            try:
                if await asyncio.to_thread(self.server_certificates.refresh):
                    # In the loop's thread: OpenSSL contexts must not change under a running handshake.
                    for context in self._contexts:
                        self.server_certificates.load_into(context)
            except Exception:
                log.exception("renewing the server certificates failed; the current ones stay in use")
            try:
                await self.refresh_station_cas()
            except Exception:
                log.exception("re-reading the station CAs failed; the known ones stay trusted")

    async def refresh_station_cas(self) -> None:
        """Trust CAs that appeared since start (`evpki ca rollover`): a new generation's stations can connect.

        OpenSSL only adds to a context's trust store; CAs are removed from trust by revocation, which
        admission checks on every connection.
        """
        self._station_issuers = await asyncio.to_thread(self.pki.stations.station_issuer_ids)
        contexts = [c for c in (self._mtls_context, self._optional_context) if c is not None]
        if not contexts:
            return
        cas = await asyncio.to_thread(self.pki.stations.client_ca_certificates)
        known = {c.fingerprint(hashes.SHA256()) for c in self._trusted_cas}
        fresh = [c for c in cas if c.fingerprint(hashes.SHA256()) not in known]
        if fresh:
            for context in contexts:
                context.load_verify_locations(
                    cadata="".join(c.public_bytes(serialization.Encoding.PEM).decode() for c in fresh)
                )
            self._trusted_cas.extend(fresh)
            log.info("now trusting station CAs %s", ", ".join(c.subject.rfc4514_string() for c in fresh))


def _address(connection: ServerConnection) -> str:
    with contextlib.suppress(Exception):
        host = connection.remote_address[0]
        return str(host)
    return "unknown"
