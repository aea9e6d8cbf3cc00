"""The ``PKI`` facade: the one object every edge (CLI, REST, OCPP) holds.

It wires settings, database, key store and clock into one :class:`~pki.runtime.context.Context`
and composes the capability services on it, one attribute each (``pki.certificates.issue(...)``,
``pki.revocation.revoke(...)``, ``pki.ocsp.respond(...)``, ...). The services live in their
capability packages; a new capability adds a package and one attribute here.
"""

from __future__ import annotations

from sqlalchemy import select, text

from pki.ca.services import CertificateAuthorities, Certificates
from pki.ca.trust_store import TrustStore
from pki.core.clock import Clock, SystemClock
from pki.core.errors import EvpkiError, Unavailable
from pki.core.settings import Settings
from pki.enrollment import Est
from pki.firmware.service import Firmware
from pki.iso15118.service import Contracts
from pki.keys import open_key_store
from pki.keys.base import KeyStore
from pki.opcp.service import Opcp
from pki.operations.services import ApiTokens, AuditLog
from pki.revocation.services import Crls, Ocsp, Revocations
from pki.runtime.context import Context
from pki.stations.call_service import StationCalls
from pki.stations.services import Deliveries, Stations
from pki.store.db import Database
from pki.store.models import CertificateAuthorityRow

__all__ = ["PKI"]


class PKI:
    """Open with :meth:`open`; every operation is on one of the capability attributes."""

    cas: CertificateAuthorities
    certificates: Certificates
    trust: TrustStore
    revocation: Revocations
    crls: Crls
    ocsp: Ocsp
    stations: Stations
    deliveries: Deliveries
    station_calls: StationCalls
    contracts: Contracts
    firmware: Firmware
    audit: AuditLog
    tokens: ApiTokens
    est: Est
    opcp: Opcp

    def __init__(self, *, database: Database, keys: KeyStore, settings: Settings, clock: Clock | None = None) -> None:
        ctx = Context(database=database, keys=keys, settings=settings, clock=clock or SystemClock())
        self._ctx = ctx
        self.cas = CertificateAuthorities(ctx)
        self.certificates = Certificates(ctx)
        self.trust = TrustStore(ctx)
        self.crls = Crls(ctx)
        self.revocation = Revocations(ctx, self.crls)
        self.ocsp = Ocsp(ctx, self.certificates)
        self.deliveries = Deliveries(ctx, self.crls)
        self.stations = Stations(ctx, self.certificates, self.revocation, self.deliveries)
        self.contracts = Contracts(ctx, self.crls)
        self.firmware = Firmware(ctx)
        self.station_calls = StationCalls(ctx, self.cas, self.trust, self.certificates, self.firmware)
        self.audit = AuditLog(ctx)
        self.tokens = ApiTokens(ctx)
        self.est = Est(ctx)
        self.opcp = Opcp(ctx, self.cas, self.trust)

    @classmethod
    def open(cls, settings: Settings | None = None, *, clock: Clock | None = None, migrate: bool = True) -> PKI:
        """Open the configured database (migrating it to the newest schema) and key store."""
        settings = settings or Settings()
        database = Database(settings.resolved_database_url)
        if migrate:
            database.migrate()
        return cls(database=database, keys=open_key_store(settings), settings=settings, clock=clock)

    def close(self) -> None:
        self.ocsp.close()
        self._ctx.database.dispose()

    @property
    def clock(self) -> Clock:
        return self._ctx.clock

    @property
    def settings(self) -> Settings:
        return self._ctx.settings

    def check_ready(self) -> None:
        """Raise :class:`Unavailable` unless the database answers and the key store holds a CA key.

        The database gets a trivial query; the key store is asked whether one CA's key exists
        (a file, or an object on the PKCS#11 token), which needs neither passphrase nor PIN use.
        """
        with self._ctx.database.read() as session:
            session.execute(text("SELECT 1"))
            key_id = session.execute(select(CertificateAuthorityRow.key_id).limit(1)).scalar_one_or_none()
        if key_id is None:
            raise Unavailable("no CA in this PKI yet: run 'evpki init'")
        try:
            present = self._ctx.keys.exists(key_id)
        except EvpkiError:
            raise
        except Exception as exc:  # a backend that cannot be reached (token gone, directory unreadable)
            raise Unavailable(f"key store unavailable: {type(exc).__name__}") from None
        if not present:
            raise Unavailable(f"key store unavailable: CA key {key_id!r} not found")
