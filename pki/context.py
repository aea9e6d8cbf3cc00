"""What every domain operation needs: database, key store, settings and clock, plus issuer lookups.

Parsed CA certificates are cached by fingerprint (a CA certificate never changes once
stored); anything that can change -- revocation, the CA row -- is read from the database.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from cryptography import x509
from sqlalchemy import select
from sqlalchemy.orm import Session

from pki.authority import IssuerContext
from pki.clock import Clock, utc
from pki.errors import PolicyViolation
from pki.keys.base import KeyStore
from pki.settings import Settings
from pki.store import repository
from pki.store.db import Database
from pki.store.models import CertificateAuthorityRow, CertificateRow

__all__ = ["ORGANIZATION_SETTING", "Context"]

ORGANIZATION_SETTING = "cso_organization"


@dataclass
class Context:
    database: Database
    keys: KeyStore
    settings: Settings
    clock: Clock
    _certificates: dict[str, x509.Certificate] = field(default_factory=dict, repr=False)

    def ca_certificate(self, row: CertificateAuthorityRow) -> x509.Certificate:
        cached = self._certificates.get(row.sha256)
        if cached is None:
            cached = x509.load_der_x509_certificate(row.der)
            self._certificates[row.sha256] = cached
        return cached

    def issuer(self, session: Session, ca_id: str) -> tuple[CertificateAuthorityRow, IssuerContext]:
        row = repository.get_ca(session, ca_id)
        return row, IssuerContext(
            ca_id=row.id,
            signer=self.keys.load(row.key_id),
            certificate=self.ca_certificate(row),
            rsa_pss=row.rsa_pss,
        )

    def chain(self, session: Session, ca_id: str) -> list[x509.Certificate]:
        """The CA's certificate and its ancestors', root last."""
        chain = []
        current: str | None = ca_id
        while current is not None:
            row = repository.get_ca(session, current)
            chain.append(self.ca_certificate(row))
            current = row.parent_id
        return chain

    def check_issuer_usable(self, session: Session, ca: CertificateAuthorityRow) -> None:
        """A CA whose own certificate is revoked, on hold or expired issues nothing."""
        now = self.clock.now()
        if utc(ca.not_after) <= now:
            raise PolicyViolation("issuer.expired", f"CA {ca.id} expired on {utc(ca.not_after).isoformat()}")
        status = session.execute(
            select(CertificateRow.status).where(CertificateRow.sha256 == ca.sha256)
        ).scalar_one_or_none()
        if status in ("revoked", "on-hold"):
            raise PolicyViolation("issuer.revoked", f"CA {ca.id} is {status} and cannot issue")
        if ca.parent_id is not None:
            self.check_issuer_usable(session, repository.get_ca(session, ca.parent_id))
