"""The EST listener: uvicorn over TLS, in a thread of its own, with its server certificates kept fresh.

:class:`EstServer` issues (or reloads) the listener's ``csms-server`` certificates through
``pki.est.server_certificates`` -- 24 h, re-issued at half-life, as the OCPP bridge's are -- builds
the SSL context, and runs a :class:`uvicorn.Server` with :class:`~api.est.tls.TlsHttpToolsProtocol`
on its own event loop (uvloop) in a daemon thread, so that ``evpki serve`` keeps uvicorn's usual
main-thread server (and its workers) for the REST API next to it. Every ``refresh_interval`` the
loop re-checks the server certificates (new handshakes use a renewed one at once) and trusts CAs
that appeared since start (a rollover's new generation).
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import logging
import socket
import ssl
import threading
from pathlib import Path

import uvicorn
from cryptography.hazmat.primitives import hashes

from api.est.app import create_est_app
from api.est.tls import TlsHttpToolsProtocol, add_client_cas, est_ssl_context
from pki import PKI
from pki.core import Unavailable
from pki.stations import SERVER_CERTIFICATE_VALIDITY

__all__ = ["EstServer"]

log = logging.getLogger("evpki.est")
_START_TIMEOUT_S = 30.0


class EstServer:
    """EST over TLS on ``host:port`` (0: any free port, see :attr:`port`) for ``pki``; :meth:`start`, :meth:`stop`."""

    def __init__(
        self,
        pki: PKI,
        *,
        host: str = "127.0.0.1",
        port: int = 8443,
        server_name: str = "localhost",
        certificate_dir: Path | None = None,
        validity: dt.timedelta = SERVER_CERTIFICATE_VALIDITY,
        refresh_interval: float = 600.0,
        log_level: str = "warning",
    ) -> None:
        self.pki = pki
        self.host = host
        self.requested_port = port
        self.refresh_interval = refresh_interval
        self.log_level = log_level
        self.certificates = pki.est.server_certificates(
            server_name=server_name, directory=certificate_dir or pki.settings.home / "est", validity=validity
        )
        self._context: ssl.SSLContext | None = None
        self._trusted: set[bytes] = set()
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None
        self._socket: socket.socket | None = None
        self._failure: BaseException | None = None

    @property
    def port(self) -> int:
        assert self._socket is not None, "not started"
        return int(self._socket.getsockname()[1])

    def ssl_context(self) -> ssl.SSLContext:
        """Issue or load the server certificates and build the context (done by :meth:`start`)."""
        self.certificates.refresh()
        cas = self.pki.est.client_ca_certificates()
        self._trusted = {c.fingerprint(hashes.SHA256()) for c in cas}
        self._context = est_ssl_context(self.certificates, cas)
        return self._context

    def start(self) -> None:
        """Bind, then serve in a daemon thread; returns once the listener accepts connections."""
        context = self.ssl_context()
        sock = socket.socket(socket.AF_INET6 if ":" in self.host else socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((self.host, self.requested_port))
        except OSError as exc:
            sock.close()
            raise Unavailable(f"cannot listen for EST on {self.host}:{self.requested_port}: {exc.strerror}") from None
        sock.listen(1024)
        sock.set_inheritable(True)
        self._socket = sock
        config = uvicorn.Config(
            create_est_app(self.pki),
            http=TlsHttpToolsProtocol,
            loop="uvloop",
            lifespan="off",
            log_level=self.log_level,
            log_config=None,
            access_log=False,
            proxy_headers=False,
            server_header=False,
            ssl_context_factory=lambda _config, _default: context,
            timeout_keep_alive=30,
        )
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(target=self._run, name="evpki-est", daemon=True)
        self._thread.start()
        waited = 0.0
        while not self._server.started:
            if self._failure is not None or not self._thread.is_alive():
                raise Unavailable(f"the EST listener did not start: {self._failure!r}")
            if waited > _START_TIMEOUT_S:
                raise Unavailable("the EST listener did not start in time")
            self._thread.join(0.02)
            waited += 0.02
        log.info("EST listening on https://%s:%d/.well-known/est/", self.host, self.port)

    def _run(self) -> None:
        assert self._server is not None and self._socket is not None
        try:
            runner = asyncio.Runner(loop_factory=self._server.config.get_loop_factory())
            with runner:
                runner.run(self._serve())
        except BaseException as exc:  # reported to start(); a running server logs through uvicorn
            self._failure = exc

    async def _serve(self) -> None:
        assert self._server is not None and self._socket is not None
        refresher = asyncio.create_task(self._refresh_forever(), name="evpki-est-certificates")
        try:
            await self._server.serve(sockets=[self._socket])
        finally:
            refresher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await refresher

    async def _refresh_forever(self) -> None:
        while True:
            await asyncio.sleep(self.refresh_interval)
            await self.refresh()

    async def refresh(self) -> None:
        """Renew the server certificates when due and trust new CAs; failures keep what is in use."""
        assert self._context is not None
        try:
            if await asyncio.to_thread(self.certificates.refresh):
                # In the loop's thread: a context must not change under a running handshake.
                self.certificates.load_into(self._context)
        except Exception:
            log.exception("renewing the EST server certificates failed; the current ones stay in use")
        try:
            cas = await asyncio.to_thread(self.pki.est.client_ca_certificates)
            fresh = [c for c in cas if c.fingerprint(hashes.SHA256()) not in self._trusted]
            add_client_cas(self._context, fresh)
            self._trusted.update(c.fingerprint(hashes.SHA256()) for c in fresh)
        except Exception:
            log.exception("re-reading the EST client CAs failed; the known ones stay trusted")

    def stop(self, timeout: float = 10.0) -> None:
        if self._server is not None:
            self._server.should_exit = True
        if self._thread is not None:
            self._thread.join(timeout)
        if self._socket is not None:
            self._socket.close()

    def __enter__(self) -> EstServer:
        self.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self.stop()
