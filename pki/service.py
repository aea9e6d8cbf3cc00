"""The ``PKI`` facade: the one object every edge (CLI, REST, OCPP) talks to.

It wires settings, database, key store and clock together and exposes intention-named
operations; the rules themselves live in the modules it calls.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from sqlalchemy import select

from pki import audit
from pki.audit import AuditVerification
from pki.bootstrap import init_hierarchy, stored_organization
from pki.clock import Clock, SystemClock, utc
from pki.context import ORGANIZATION_SETTING, Context
from pki.crl import build_crl
from pki.errors import NotFound
from pki.hierarchy import load_hierarchy
from pki.issuance import IssueRequest, issue
from pki.keys.base import KeyStore
from pki.keys.file import FileKeyStore
from pki.policy import RequestIdentity
from pki.revocation import RevocationReason, apply_revocation, parse_reason, release_hold
from pki.settings import Settings
from pki.store import repository
from pki.store.db import Database
from pki.store.models import CertificateRow, CrlRow
from pki.store.repository import CertificateFilter
from pki.views import CaView, CertificateView, CrlView, InitReport, IssuedCertificate

__all__ = ["PKI"]


class PKI:
    def __init__(self, *, database: Database, keys: KeyStore, settings: Settings, clock: Clock | None = None) -> None:
        self._ctx = Context(database=database, keys=keys, settings=settings, clock=clock or SystemClock())

    @classmethod
    def open(cls, settings: Settings | None = None, *, clock: Clock | None = None, migrate: bool = True) -> PKI:
        """Open the configured database (migrating it to the newest schema) and key store."""
        settings = settings or Settings()
        database = Database(settings.resolved_database_url)
        if migrate:
            database.migrate()
        keys = FileKeyStore(settings.keys_dir, settings.passphrase)
        return cls(database=database, keys=keys, settings=settings, clock=clock)

    def close(self) -> None:
        self._ctx.database.dispose()

    @property
    def clock(self) -> Clock:
        return self._ctx.clock

    @property
    def settings(self) -> Settings:
        return self._ctx.settings

    # -- hierarchy ---------------------------------------------------------------------------

    def init(self, *, config: Path | None = None, organization: str | None = None, actor: str = "system") -> InitReport:
        """Build the hierarchy of ``config`` (the packaged default when None); keeps what exists."""
        spec = load_hierarchy(config, organization or stored_organization(self._ctx))
        return init_hierarchy(self._ctx, spec, actor)

    def organization(self) -> str | None:
        with self._ctx.database.read() as session:
            return repository.get_setting(session, ORGANIZATION_SETTING)

    def list_cas(self) -> list[CaView]:
        with self._ctx.database.read() as session:
            return [CaView.from_row(row) for row in repository.list_cas(session)]

    def get_ca(self, ca_id: str) -> CaView:
        with self._ctx.database.read() as session:
            return CaView.from_row(repository.get_ca(session, ca_id))

    def ca_chain(self, ca_id: str) -> list[x509.Certificate]:
        """The CA's certificate followed by its ancestors', root last."""
        with self._ctx.database.read() as session:
            return self._ctx.chain(session, ca_id)

    # -- issuance ----------------------------------------------------------------------------

    def issue(
        self,
        *,
        profile: str,
        csr: bytes | str,
        identity: RequestIdentity,
        ca_id: str | None = None,
        validity: dt.timedelta | None = None,
        actor: str = "system",
    ) -> IssuedCertificate:
        return issue(self._ctx, IssueRequest(profile, csr, identity, ca_id, validity), actor)

    def renew(
        self,
        *,
        csr: bytes | str,
        identity: RequestIdentity,
        profile: str = "station",
        ca_id: str | None = None,
        validity: dt.timedelta | None = None,
        actor: str = "system",
    ) -> IssuedCertificate:
        return issue(self._ctx, IssueRequest(profile, csr, identity, ca_id, validity, renew=True), actor)

    # -- lookup ------------------------------------------------------------------------------

    def certificate(self, key: str, ca_id: str | None = None) -> CertificateView:
        """By serial (hex, as ``openssl x509 -serial`` prints it) or SHA-256 fingerprint."""
        with self._ctx.database.read() as session:
            row = repository.find_certificate(session, key, ca_id)
            return self._view(session, row)

    def certificates(self, flt: CertificateFilter) -> list[CertificateView]:
        with self._ctx.database.read() as session:
            now = self._ctx.clock.now()
            return [self._view(session, row) for row in repository.list_certificates(session, flt, now)]

    def _view(self, session: object, row: CertificateRow) -> CertificateView:
        successor = None
        if row.superseded_by_id is not None:
            successor = session.get(CertificateRow, row.superseded_by_id).serial  # type: ignore[attr-defined]
        return CertificateView.from_row(row, self._ctx.clock.now(), successor)

    # -- revocation --------------------------------------------------------------------------

    def revoke(
        self, key: str, reason: str | RevocationReason, *, ca_id: str | None = None, actor: str = "system"
    ) -> CertificateView:
        parsed = reason if isinstance(reason, RevocationReason) else parse_reason(reason)
        now = self._ctx.clock.now()
        with self._ctx.database.write() as session:
            row = repository.find_certificate(session, key, ca_id)
            apply_revocation(row, parsed, now)
            audit.append(
                session,
                at=now,
                actor=actor,
                action="revoke",
                ca_id=row.issuer_id,
                serial=row.serial,
                details={"reason": parsed.value, "sha256": row.sha256},
            )
            session.flush()
            return self._view(session, row)

    def release_hold(self, key: str, *, ca_id: str | None = None, actor: str = "system") -> CertificateView:
        now = self._ctx.clock.now()
        with self._ctx.database.write() as session:
            row = repository.find_certificate(session, key, ca_id)
            release_hold(row, now)
            audit.append(
                session,
                at=now,
                actor=actor,
                action="release-hold",
                ca_id=row.issuer_id,
                serial=row.serial,
                details={"sha256": row.sha256},
            )
            session.flush()
            return self._view(session, row)

    def generate_crl(self, ca_id: str, *, next_update: dt.timedelta | None = None, actor: str = "system") -> CrlView:
        """Build, sign and store the next full CRL of ``ca_id``."""
        validity = next_update or self._ctx.settings.crl_next_update
        with self._ctx.database.write() as session:
            ca_row, issuer = self._ctx.issuer(session, ca_id)
            number = repository.next_crl_number(session, ca_id)
            now = self._ctx.clock.now()
            # The entries stream straight into the builder: holding them as a list as well would
            # double peak memory for a million-entry CRL.
            crl = build_crl(
                issuer=self._ctx.ca_certificate(ca_row),
                signer=issuer.signer,
                rsa_pss=ca_row.rsa_pss,
                number=number,
                this_update=now,
                next_update=now + validity,
                entries=repository.revoked_entries(session, ca_id),
            )
            der = crl.public_bytes(serialization.Encoding.DER)
            revoked_count = len(crl)
            repository.add_crl(
                session,
                CrlRow(
                    ca_id=ca_id,
                    number=number,
                    this_update=now,
                    next_update=now + validity,
                    revoked_count=revoked_count,
                    der=der,
                ),
            )
            audit.append(
                session,
                at=now,
                actor=actor,
                action="crl",
                ca_id=ca_id,
                details={"number": number, "revoked": revoked_count, "next_update": (now + validity).isoformat()},
            )
        return CrlView(ca_id, number, now, now + validity, revoked_count, der)

    def latest_crl(self, ca_id: str) -> CrlView:
        with self._ctx.database.read() as session:
            repository.get_ca(session, ca_id)
            row = repository.latest_crl(session, ca_id)
            if row is None:
                raise NotFound(f"no CRL has been generated for {ca_id} yet")
            return CrlView(
                row.ca_id, row.number, utc(row.this_update), utc(row.next_update), row.revoked_count, row.der
            )

    # -- audit -------------------------------------------------------------------------------

    def verify_audit(self) -> AuditVerification:
        with self._ctx.database.read() as session:
            return audit.verify(session)

    def audit_count(self) -> int:
        from pki.store.models import AuditHead

        with self._ctx.database.read() as session:
            head = session.execute(select(AuditHead)).scalar_one_or_none()
            return head.seq if head else 0
