"""What a contract looks like to its readers: :class:`ContractView`, and the status it derives.

The stored status is ``active`` or ``revoked``; a view derives ``pending`` (not started yet) and
``expired`` from the validity, as certificate views do. :func:`status_clause` is the same
derivation as a query condition, next to :func:`derived_status` so that listing contracts by
status and viewing one always agree.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Row, and_, or_
from sqlalchemy.sql.elements import ColumnElement

from pki.core.clock import utc
from pki.core.errors import InvalidInput
from pki.store.models import ContractRow

__all__ = [
    "CONTRACT_STATUSES",
    "CertificateRef",
    "ContractRevocation",
    "ContractView",
    "derived_status",
    "optional_isoformat",
    "status_clause",
]

CONTRACT_STATUSES = ("active", "pending", "expired", "revoked")


@dataclass(frozen=True, slots=True)
class CertificateRef:
    issuer_id: str
    serial: str  # upper-case hex, as stored


@dataclass(frozen=True, slots=True)
class ContractView:
    emaid: str
    pcid: str
    status: str  # active | pending | expired | revoked, at the time the view was made
    valid_from: dt.datetime
    valid_until: dt.datetime | None  # None: contract certificates get the profile's default validity
    note: str | None
    created_at: dt.datetime
    updated_at: dt.datetime
    revoked_at: dt.datetime | None
    revocation_note: str | None
    current_certificate: CertificateRef | None
    priority: int = 0  # among the PCID's contracts, lower first

    @classmethod
    def from_row(cls, row: ContractRow | Row[Any], now: dt.datetime) -> ContractView:
        """From an ORM row or a Core row of the contract table (same attribute names)."""
        current = None
        if row.current_certificate_issuer and row.current_certificate_serial:
            current = CertificateRef(row.current_certificate_issuer, row.current_certificate_serial)
        return cls(
            emaid=row.emaid,
            pcid=row.pcid,
            status=derived_status(row, now),
            valid_from=utc(row.valid_from),
            valid_until=utc(row.valid_until) if row.valid_until else None,
            note=row.note,
            created_at=utc(row.created_at),
            updated_at=utc(row.updated_at),
            revoked_at=utc(row.revoked_at) if row.revoked_at else None,
            revocation_note=row.revocation_note,
            current_certificate=current,
            priority=row.priority,
        )

    @property
    def is_active(self) -> bool:
        return self.status == "active"

    def to_json(self) -> dict[str, Any]:
        """camelCase, like the REST representation, so scripts read CLI and API output alike."""
        current = self.current_certificate
        return {
            "emaid": self.emaid,
            "pcid": self.pcid,
            "status": self.status,
            "validFrom": self.valid_from.isoformat(),
            "validUntil": optional_isoformat(self.valid_until),
            "note": self.note,
            "createdAt": self.created_at.isoformat(),
            "updatedAt": self.updated_at.isoformat(),
            "revokedAt": optional_isoformat(self.revoked_at),
            "revocationNote": self.revocation_note,
            "currentCertificateIssuer": current.issuer_id if current else None,
            "currentCertificateSerial": current.serial if current else None,
            "priority": self.priority,
        }


@dataclass(frozen=True, slots=True)
class ContractRevocation:
    contract: ContractView
    revoked_certificates: tuple[CertificateRef, ...]  # revoked with the contract (cessationOfOperation)


def optional_isoformat(value: dt.datetime | None) -> str | None:
    """``value.isoformat()``, or None for an open end or a contract that was never revoked."""
    return value.isoformat() if value is not None else None


def derived_status(row: ContractRow | Row[Any], now: dt.datetime) -> str:
    """The status of the stored contract ``row`` at ``now``: one of :data:`CONTRACT_STATUSES`."""
    if row.status == "revoked":
        return "revoked"
    if row.valid_until is not None and utc(row.valid_until) <= now:
        return "expired"
    if utc(row.valid_from) > now:
        return "pending"
    return "active"


def status_clause(status: str, now: dt.datetime | ColumnElement[Any]) -> ColumnElement[bool]:
    """The rows :func:`derived_status` gives ``status`` at ``now`` (an instant or a bind parameter), as a condition."""
    unrevoked = ContractRow.status == "active"
    not_ended = or_(ContractRow.valid_until.is_(None), ContractRow.valid_until > now)  # type: ignore[union-attr,operator]
    clauses = {
        "revoked": ContractRow.status == "revoked",
        "expired": and_(unrevoked, ContractRow.valid_until <= now),  # type: ignore[operator]
        "pending": and_(unrevoked, ContractRow.valid_from > now, not_ended),  # type: ignore[operator]
        "active": and_(unrevoked, ContractRow.valid_from <= now, not_ended),  # type: ignore[operator]
    }
    if status not in clauses:
        raise InvalidInput(f"unknown contract status {status!r}; use one of {', '.join(CONTRACT_STATUSES)}")
    return clauses[status]  # type: ignore[return-value]
