"""What every domain operation needs: database, key store, settings and clock, plus issuer lookups.

Two kinds of cache live here, and both only ever hold facts that cannot change under them:

* parsed CA certificates, by fingerprint (a CA certificate never changes for a given SHA-256);
* the *CA directory*: the immutable facts of every CA row (id, certificate, parent, profiles,
  standard, key) as last read. It lets issuance choose an issuer and sign without a query, but
  it is never trusted on its own: :meth:`Context.ca_directory` re-reads it inside the write
  transaction (one query, which also brings the current revocation status of every CA
  certificate) and issuance starts again when it differs. The database stays the only copy.

The organisation setting is cached once it is set, because it is never changed afterwards
(``init`` refuses another organisation). Anything that does change -- revocation status, CRL
numbers -- is read from the database each time.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

from cryptography import x509
from sqlalchemy import Connection, select
from sqlalchemy.orm import Session

from pki.core.clock import Clock, utc
from pki.core.errors import PolicyViolation
from pki.core.settings import Settings
from pki.keys.base import KeyStore, Signer
from pki.store import repository
from pki.store.db import Database
from pki.store.models import CertificateAuthorityRow, CertificateRow

__all__ = [
    "ISO15118_2",
    "ISO15118_20",
    "ORGANIZATION_SETTING",
    "CaDirectory",
    "CaEntry",
    "Context",
    "IssuerContext",
    "foreign_certificates",
]

ORGANIZATION_SETTING = "cso_organization"
ISO15118_2 = "iso15118-2"
ISO15118_20 = "iso15118-20"

_CA = CertificateAuthorityRow.__table__  # type: ignore[attr-defined]
_CERTIFICATE = CertificateRow.__table__  # type: ignore[attr-defined]
# Every CA with what identifies its certificate and the status of that certificate. The CA
# table holds a handful of rows, so reading all of it costs about what one lookup does, and it
# also tells whether a CA that issues the same profile appeared meanwhile.
_DIRECTORY_QUERY = (
    select(
        _CA.c.id,
        _CA.c.sha256,
        _CA.c.parent_id,
        _CA.c.issues,
        _CA.c.standard,
        _CA.c.key_id,
        _CA.c.rsa_pss,
        _CERTIFICATE.c.status,
    )
    .select_from(_CA.outerjoin(_CERTIFICATE, _CERTIFICATE.c.sha256 == _CA.c.sha256))
    .order_by(_CA.c.created_at, _CA.c.id)
)
_STATUS_COLUMN = 7
# The same, plus what a new directory entry needs; read only when the directory changed.
_FULL_DIRECTORY_QUERY = _DIRECTORY_QUERY.add_columns(_CA.c.not_after, _CA.c.der, _CA.c.pki, _CA.c.foreign_chain)


def foreign_certificates(pem_text: str | None) -> tuple[x509.Certificate, ...]:
    """The stored chain above a CA under an external parent (intermediates, then the root)."""
    return tuple(x509.load_pem_x509_certificates(pem_text.encode())) if pem_text else ()


@dataclass(frozen=True, slots=True)
class IssuerContext:
    """The issuing CA as certificate building needs it; ``certificate`` is None for a self-signed root."""

    ca_id: str
    signer: Signer
    certificate: x509.Certificate | None
    rsa_pss: bool
    standard: str = "ocpp"

    @property
    def compact(self) -> bool:
        """ISO 15118 certificates travel inside EXI messages and must stay small (see :func:`build_certificate`)."""
        return self.standard in (ISO15118_2, ISO15118_20)


@dataclass(frozen=True, slots=True)
class CaEntry:
    """The facts of a CA row that stay fixed as long as its certificate (``sha256``) does."""

    id: str
    sha256: str
    parent_id: str | None
    issues: tuple[str, ...]
    standard: str
    key_id: str
    rsa_pss: bool
    not_after: dt.datetime
    certificate: x509.Certificate
    pki: str = ""  # the hierarchy section; a rolled-over root shares it with its predecessor
    # Above a CA whose parent we do not run: the external intermediates, then the external root.
    foreign_chain: tuple[x509.Certificate, ...] = ()

    @property
    def is_root(self) -> bool:
        """One of our own self-signed roots (a CA under an external parent has no parent row either)."""
        return self.parent_id is None and not self.foreign_chain


@dataclass(frozen=True, slots=True)
class CaDirectory:
    """Every CA in creation order (as ``repository.list_cas``) and the status of each CA certificate."""

    version: tuple[tuple[object, ...], ...]  # the identifying columns as read; equal versions, equal directories
    cas: dict[str, CaEntry]
    statuses: dict[str, str | None]  # by CA id: the stored status of its certificate row

    def chain(self, ca_id: str) -> list[CaEntry]:
        """The CA and its ancestors, root last."""
        chain = []
        current: str | None = ca_id
        while current is not None:
            entry = self.cas[current]
            chain.append(entry)
            current = entry.parent_id
        return chain

    def presented(self, ca_id: str) -> list[x509.Certificate]:
        """What a certificate of ``ca_id`` travels with: the CA and every CA above it, leaf side
        first, the root left out -- our root, or an external root (whose intermediates are in)."""
        entries = self.chain(ca_id)
        top = entries[-1]
        if top.is_root:
            return [entry.certificate for entry in entries[:-1]]
        return [entry.certificate for entry in entries] + list(top.foreign_chain[:-1])

    def anchor(self, ca_id: str) -> x509.Certificate:
        """The self-signed root ``ca_id`` chains to: ours, or the external one it was installed under."""
        top = self.chain(ca_id)[-1]
        return top.foreign_chain[-1] if top.foreign_chain else top.certificate


@dataclass
class Context:
    database: Database
    keys: KeyStore
    settings: Settings
    clock: Clock
    _certificates: dict[str, x509.Certificate] = field(default_factory=dict, repr=False)
    _directory: CaDirectory | None = field(default=None, repr=False)
    _organization: str | None = field(default=None, repr=False)

    def ca_certificate(self, row: CertificateAuthorityRow) -> x509.Certificate:
        return self._parsed(row.sha256, row.der)

    def _parsed(self, sha256: str, der: bytes) -> x509.Certificate:
        cached = self._certificates.get(sha256)
        if cached is None:
            cached = x509.load_der_x509_certificate(der)
            self._certificates[sha256] = cached
        return cached

    def issuer(self, session: Session, ca_id: str) -> tuple[CertificateAuthorityRow, IssuerContext]:
        row = repository.get_ca(session, ca_id)
        return row, IssuerContext(
            ca_id=row.id,
            signer=self.keys.load(row.key_id),
            certificate=self.ca_certificate(row),
            rsa_pss=row.rsa_pss,
            standard=row.standard,
        )

    def chain(self, session: Session, ca_id: str) -> list[x509.Certificate]:
        """The CA's certificate and its ancestors', root last; under an external parent, the
        external intermediates follow and the chain stops below the external root."""
        chain = []
        current: str | None = ca_id
        while current is not None:
            row = repository.get_ca(session, current)
            chain.append(self.ca_certificate(row))
            current = row.parent_id
        return chain + list(foreign_certificates(row.foreign_chain)[:-1])

    # -- the cached CA directory (issuance's hot path) ---------------------------------------

    def cached_ca_directory(self) -> CaDirectory | None:
        """The directory as last read, or None; only a hint until re-read in a transaction."""
        return self._directory

    def ca_directory(self, connection: Connection) -> CaDirectory:
        """Read the CA directory in ``connection``'s transaction (one query while no CA changes)."""
        rows = connection.execute(_DIRECTORY_QUERY).all()
        version = tuple(tuple(row[:_STATUS_COLUMN]) for row in rows)
        cached = self._directory
        if cached is None or cached.version != version:
            # Something changed (or nothing is cached): read the full rows, version included, in
            # one statement so that entries, version and statuses describe the same moment.
            rows = connection.execute(_FULL_DIRECTORY_QUERY).all()
            version = tuple(tuple(row[:_STATUS_COLUMN]) for row in rows)
            cas = {
                row.id: CaEntry(
                    id=row.id,
                    sha256=row.sha256,
                    parent_id=row.parent_id,
                    issues=tuple(p for p in row.issues.split(",") if p),
                    standard=row.standard,
                    key_id=row.key_id,
                    rsa_pss=row.rsa_pss,
                    not_after=utc(row.not_after),
                    certificate=self._parsed(row.sha256, row.der),
                    pki=row.pki,
                    foreign_chain=foreign_certificates(row.foreign_chain),
                )
                for row in rows
            }
        else:
            cas = cached.cas
        directory = CaDirectory(version, cas, {row[0]: row[_STATUS_COLUMN] for row in rows})
        self._directory = directory
        return directory

    def check_chain_usable(self, directory: CaDirectory, ca_id: str) -> None:
        """A CA whose own certificate, or an ancestor's, is revoked, on hold or expired issues nothing.

        ``directory`` must have been read in the caller's current transaction.
        """
        now = self.clock.now()
        chain = directory.chain(ca_id)
        for ca in chain:
            if ca.not_after <= now:
                raise PolicyViolation("issuer.expired", f"CA {ca.id} expired on {ca.not_after.isoformat()}")
            status = directory.statuses.get(ca.id)
            if status in ("revoked", "on-hold"):
                raise PolicyViolation("issuer.revoked", f"CA {ca.id} is {status} and cannot issue")
        for external in chain[-1].foreign_chain:
            if utc(external.not_valid_after_utc) <= now:
                raise PolicyViolation(
                    "issuer.expired",
                    f"external CA {external.subject.rfc4514_string()} above {chain[-1].id} expired on "
                    f"{external.not_valid_after_utc.isoformat()}",
                )

    def cached_organization(self) -> str | None:
        return self._organization

    def organization(self, session: Session) -> str | None:
        """The CSO organisation; cached once set because ``init`` never changes it afterwards."""
        if self._organization is None:
            self._organization = repository.get_setting(session, ORGANIZATION_SETTING)
        return self._organization
