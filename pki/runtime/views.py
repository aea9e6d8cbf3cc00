"""Read-only views the domain hands to its edges (CLI, API, OCPP). Never carry private keys."""

from __future__ import annotations

import datetime as dt
import hashlib
from dataclasses import asdict, dataclass, field
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from sqlalchemy.orm import Session

from pki.core.clock import utc
from pki.store.models import CertificateAuthorityRow, CertificateRow
from pki.store.repository import derived_status

__all__ = ["CaView", "CertificateView", "CrlView", "InitReport", "IssuedCertificate", "certificate_view", "pem"]


def pem(certificate: x509.Certificate) -> str:
    return certificate.public_bytes(serialization.Encoding.PEM).decode()


def _iso(value: dt.datetime | None) -> str | None:
    return utc(value).isoformat() if value is not None else None


@dataclass(frozen=True, slots=True)
class CaView:
    id: str
    pki: str
    standard: str
    parent_id: str | None
    subject: str
    serial: str
    sha256: str
    not_before: dt.datetime
    not_after: dt.datetime
    key_backend: str
    issues: tuple[str, ...]
    crl_number: int
    certificate_pem: str = field(repr=False)
    external_parent: bool = False  # installed under a CA we do not run (its issuer is not in this list)

    @property
    def is_root(self) -> bool:
        return self.parent_id is None and not self.external_parent

    @classmethod
    def from_row(cls, row: CertificateAuthorityRow) -> CaView:
        certificate = x509.load_der_x509_certificate(row.der)
        return cls(
            id=row.id,
            pki=row.pki,
            standard=row.standard,
            parent_id=row.parent_id,
            subject=row.subject,
            serial=row.serial,
            sha256=row.sha256,
            not_before=utc(row.not_before),
            not_after=utc(row.not_after),
            key_backend=row.key_backend,
            issues=tuple(p for p in row.issues.split(",") if p),
            crl_number=row.crl_number,
            certificate_pem=pem(certificate),
            external_parent=row.foreign_chain is not None,
        )

    def to_json(self, *, with_pem: bool = False) -> dict[str, Any]:
        data = asdict(self)
        data["not_before"], data["not_after"] = _iso(self.not_before), _iso(self.not_after)
        data["issues"] = list(self.issues)
        if not with_pem:
            del data["certificate_pem"]
        return data


@dataclass(frozen=True, slots=True)
class CertificateView:
    issuer_id: str
    serial: str
    sha256: str
    profile: str
    subject: str
    identity: str | None
    station_serial: str | None
    not_before: dt.datetime
    not_after: dt.datetime
    status: str
    revoked_at: dt.datetime | None
    revocation_reason: str | None
    superseded_by: str | None
    label: str | None
    certificate_pem: str = field(repr=False)

    @classmethod
    def from_row(cls, row: CertificateRow, now: dt.datetime, superseded_by: str | None = None) -> CertificateView:
        return cls(
            issuer_id=row.issuer_id,
            serial=row.serial,
            sha256=row.sha256,
            profile=row.profile,
            subject=row.subject,
            identity=row.identity,
            station_serial=row.station_serial,
            not_before=utc(row.not_before),
            not_after=utc(row.not_after),
            status=derived_status(row, now),
            revoked_at=utc(row.revoked_at) if row.revoked_at else None,
            revocation_reason=row.revocation_reason,
            superseded_by=superseded_by,
            label=row.label,
            certificate_pem=pem(x509.load_der_x509_certificate(row.der)),
        )

    def to_json(self, *, with_pem: bool = False) -> dict[str, Any]:
        data = asdict(self)
        for key in ("not_before", "not_after", "revoked_at"):
            data[key] = _iso(data[key])
        if not with_pem:
            del data["certificate_pem"]
        return data


@dataclass(frozen=True, slots=True)
class IssuedCertificate:
    certificate: CertificateView
    chain: tuple[x509.Certificate, ...] = field(repr=False)  # issuing CAs up to, not including, the root

    @property
    def chain_pem(self) -> str:
        """Leaf first, then the sub-CAs; the root is left out (OCPP CertificateSigned convention)."""
        return self.certificate.certificate_pem + "".join(pem(c) for c in self.chain)


@dataclass(frozen=True, slots=True)
class CrlView:
    ca_id: str
    number: int
    this_update: dt.datetime
    next_update: dt.datetime
    revoked_count: int
    der: bytes = field(repr=False)
    kind: str = "full"  # full | delta
    base_number: int | None = None  # a delta CRL's base full CRL (RFC 5280 §5.2.4)

    @property
    def etag(self) -> str:
        """A strong HTTP entity tag (RFC 9110 §8.8.3): the quoted hex SHA-256 of the DER."""
        return f'"{hashlib.sha256(self.der).hexdigest()}"'

    def to_json(self) -> dict[str, Any]:
        return {
            "ca_id": self.ca_id,
            "kind": self.kind,
            "number": self.number,
            "base_number": self.base_number,
            "this_update": _iso(self.this_update),
            "next_update": _iso(self.next_update),
            "revoked_count": self.revoked_count,
        }


@dataclass(frozen=True, slots=True)
class InitReport:
    organization: str
    created: tuple[str, ...]
    kept: tuple[str, ...]
    awaiting: tuple[str, ...] = ()  # CAs whose external parent has yet to sign their request
    waiting: tuple[str, ...] = ()  # CAs and leaves below those, created once they are installed


def certificate_view(session: Session, row: CertificateRow, now: dt.datetime) -> CertificateView:
    """The view of a stored certificate, naming the serial of the certificate that superseded it."""
    successor = None
    if row.superseded_by_id is not None:
        successor = session.get(CertificateRow, row.superseded_by_id).serial  # type: ignore[union-attr]
    return CertificateView.from_row(row, now, successor)
