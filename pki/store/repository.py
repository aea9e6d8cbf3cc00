"""Intention-named queries over an explicit session. Callers own the transaction.

Status of a certificate as users see it is derived here in one place: ``revoked`` and
``on-hold`` come from the stored status; otherwise ``expired`` (past notAfter), then
``superseded`` (a renewal replaced it), else ``valid``.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from sqlalchemy import ColumnElement, Connection, Select, and_, bindparam, func, insert, or_, select, update
from sqlalchemy.orm import Session

from pki.core.errors import Conflict, InvalidInput, NotFound
from pki.store.models import CertificateAuthorityRow, CertificateRow, CrlRow, SettingRow, StatusFeedRow

__all__ = [
    "CERTIFICATE_STATUSES",
    "CertificateFilter",
    "add_certificate",
    "add_crl",
    "changed_entries_since",
    "current_for_identity",
    "current_rows_for_identity",
    "derived_status",
    "find_certificate",
    "get_ca",
    "get_setting",
    "insert_certificate",
    "last_status_change",
    "latest_crl",
    "list_cas",
    "list_certificates",
    "managed_leaf",
    "next_crl_number",
    "revoked_entries",
    "set_setting",
    "status_seq",
    "supersede",
    "unknown_ca",
]

CERTIFICATE_STATUSES = ("valid", "superseded", "expired", "revoked", "on-hold")

_CERTIFICATE = CertificateRow.__table__  # type: ignore[attr-defined]
_REVOKED_BATCH = 20_000


def derived_status(row: CertificateRow, now: dt.datetime) -> str:
    from pki.core.clock import utc

    if row.status in ("revoked", "on-hold"):
        return row.status
    if utc(row.not_after) <= now:
        return "expired"
    if row.superseded_by_id is not None:
        return "superseded"
    return "valid"


def get_ca(session: Session, ca_id: str, *, lock: bool = False) -> CertificateAuthorityRow:
    query = select(CertificateAuthorityRow).where(CertificateAuthorityRow.id == ca_id)
    if lock:
        # FOR NO KEY UPDATE: serialises the lockers (CRL numbering, status changes, responder
        # issuance) without blocking issuance, whose certificate insert only takes FOR KEY SHARE on
        # the CA row through the foreign key.
        query = query.with_for_update(key_share=True)
    row = session.execute(query).scalar_one_or_none()
    if row is None:
        raise unknown_ca(ca_id)
    return row


def unknown_ca(ca_id: str) -> NotFound:
    """The error for a CA id that does not exist."""
    return NotFound(f"no CA {ca_id!r}; `evpki ca list` shows the CAs")


def list_cas(session: Session) -> list[CertificateAuthorityRow]:
    return list(session.execute(select(CertificateAuthorityRow).order_by(CertificateAuthorityRow.created_at)).scalars())


def add_certificate(session: Session, row: CertificateRow) -> CertificateRow:
    session.add(row)
    session.flush()
    return row


_INSERT_CERTIFICATE = insert(_CERTIFICATE)


def insert_certificate(
    connection: Connection,
    *,
    issuer_id: str,
    serial: str,
    sha256: str,
    profile: str,
    subject: str,
    identity: str | None,
    station_serial: str | None,
    not_before: dt.datetime,
    not_after: dt.datetime,
    der: bytes,
    created_at: dt.datetime,
) -> int:
    """Store a newly issued certificate (status ``valid``) and return its id.

    :func:`add_certificate` without the ORM object, for issuance's hot path: building a
    ``CertificateRow`` costs more than the INSERT itself.
    """
    result = connection.execute(
        _INSERT_CERTIFICATE,
        {
            "issuer_id": issuer_id,
            "serial": serial,
            "sha256": sha256,
            "profile": profile,
            "subject": subject,
            "identity": identity,
            "station_serial": station_serial,
            "not_before": not_before,
            "not_after": not_after,
            "der": der,
            "status": "valid",
            "created_at": created_at,
        },
    )
    return int(result.inserted_primary_key[0])


def find_certificate(session: Session, key: str, ca_id: str | None = None) -> CertificateRow:
    """By SHA-256 fingerprint (64 hex digits) or by serial (hex, any case, leading zeros allowed)."""
    text = key.strip().replace(":", "")
    if text.lower().startswith("0x"):
        text = text[2:]
    try:
        value = int(text, 16)
    except ValueError:
        raise InvalidInput(f"{key!r} is neither a hex serial nor a SHA-256 fingerprint") from None
    if len(text) == 64:
        row = session.execute(select(CertificateRow).where(CertificateRow.sha256 == text.lower())).scalar_one_or_none()
        if row is None:
            raise NotFound(f"no certificate with SHA-256 fingerprint {text.lower()}")
        return row
    if len(text) > 40:
        raise InvalidInput(f"serial {key!r} is longer than 20 octets")
    serial = format(value, "X")
    query = select(CertificateRow).where(CertificateRow.serial == serial)
    if ca_id is not None:
        query = query.where(CertificateRow.issuer_id == ca_id)
    rows = list(session.execute(query).scalars())
    if not rows:
        where = f" issued by {ca_id}" if ca_id else ""
        raise NotFound(f"no certificate with serial {serial}{where}")
    if len(rows) > 1:
        issuers = ", ".join(sorted(r.issuer_id for r in rows))
        raise Conflict(f"serial {serial} exists under several CAs ({issuers}); name one with --ca")
    return rows[0]


def current_for_identity(session: Session, profile: str, identity: str) -> list[CertificateRow]:
    """Certificates of this identity that no renewal has replaced and that are not revoked."""
    query = select(CertificateRow).where(
        CertificateRow.profile == profile,
        CertificateRow.identity == identity,
        CertificateRow.superseded_by_id.is_(None),  # type: ignore[union-attr]
        CertificateRow.status != "revoked",
    )
    return list(session.execute(query.order_by(CertificateRow.id)).scalars())


def core_connection(session: Session) -> Connection:
    """``session``'s connection, for a Core statement, after the flush an ORM query would have run first."""
    if session.autoflush:
        session.flush()
    return session.connection()


def has_current_for_identity(session: Session, profile: str, identity: str) -> bool:
    """Whether :func:`current_for_identity` would return anything (one Core query, built once)."""
    found = core_connection(session).execute(_CURRENT_FOR_IDENTITY, {"profile": profile, "identity": identity})
    return found.first() is not None


_CERTIFICATE = CertificateRow.__table__  # type: ignore[attr-defined]


def _current_of_identity(*columns: Any) -> Select[Any]:
    """What "current" means for an identity's certificates: not superseded by a renewal, not revoked."""
    return select(*columns).where(
        _CERTIFICATE.c.profile == bindparam("profile"),
        _CERTIFICATE.c.identity == bindparam("identity"),
        _CERTIFICATE.c.superseded_by_id.is_(None),
        _CERTIFICATE.c.status != "revoked",
    )


_CURRENT_FOR_IDENTITY = _current_of_identity(_CERTIFICATE.c.id).limit(1)
_CURRENT_ROWS_FOR_IDENTITY = _current_of_identity(_CERTIFICATE.c.id, _CERTIFICATE.c.issuer_id, _CERTIFICATE.c.serial)


def current_rows_for_identity(connection: Connection, profile: str, identity: str) -> list[Any]:
    """:func:`current_for_identity` as Core rows (``id``, ``issuer_id``, ``serial``), oldest first."""
    query = _CURRENT_ROWS_FOR_IDENTITY.order_by(_CERTIFICATE.c.id)
    return list(connection.execute(query, {"profile": profile, "identity": identity}))


def supersede(session: Session, old_ids: list[int], new_id: int) -> None:
    if old_ids:
        session.execute(
            update(CertificateRow).where(CertificateRow.id.in_(old_ids)).values(superseded_by_id=new_id)  # type: ignore[union-attr]
        )


def managed_leaf(session: Session, label: str) -> CertificateRow | None:
    query = select(CertificateRow).where(CertificateRow.label == label).order_by(CertificateRow.id.desc())  # type: ignore[union-attr]
    return session.execute(query.limit(1)).scalar_one_or_none()


@dataclass(frozen=True, slots=True)
class CertificateFilter:
    ca_id: str | None = None
    identity: str | None = None
    profile: str | None = None
    status: str | None = None
    expiring_before: dt.datetime | None = None
    limit: int = 1000
    offset: int = 0


def list_certificates(session: Session, flt: CertificateFilter, now: dt.datetime) -> list[CertificateRow]:
    query: Select[tuple[CertificateRow]] = select(CertificateRow)
    if flt.ca_id:
        query = query.where(CertificateRow.issuer_id == flt.ca_id)
    if flt.identity:
        query = query.where(or_(CertificateRow.identity == flt.identity, CertificateRow.station_serial == flt.identity))
    if flt.profile:
        query = query.where(CertificateRow.profile == flt.profile)
    if flt.expiring_before is not None:
        query = query.where(
            CertificateRow.not_after > now,
            CertificateRow.not_after <= flt.expiring_before,
            CertificateRow.status == "valid",
            # A renewed certificate is no longer "expiring": its successor took over, and a
            # renewal loop listing it would renew the same identity twice.
            CertificateRow.superseded_by_id.is_(None),  # type: ignore[union-attr]
        )
    if flt.status:
        query = query.where(_status_clause(flt.status, now))
    query = query.order_by(CertificateRow.id).limit(flt.limit).offset(flt.offset)
    return list(session.execute(query).scalars())


def _status_clause(status: str, now: dt.datetime) -> ColumnElement[bool]:
    live = and_(CertificateRow.status == "valid", CertificateRow.not_after > now)
    clauses = {
        "revoked": CertificateRow.status == "revoked",
        "on-hold": CertificateRow.status == "on-hold",
        "expired": and_(CertificateRow.status == "valid", CertificateRow.not_after <= now),
        "superseded": and_(live, CertificateRow.superseded_by_id.is_not(None)),  # type: ignore[union-attr]
        "valid": and_(live, CertificateRow.superseded_by_id.is_(None)),  # type: ignore[union-attr]
    }
    if status not in clauses:
        raise InvalidInput(f"unknown status {status!r}; use one of {', '.join(CERTIFICATE_STATUSES)}")
    return clauses[status]


_REVOKED_QUERY = (
    select(_CERTIFICATE.c.serial, _CERTIFICATE.c.revoked_at, _CERTIFICATE.c.revocation_reason)
    .where(_CERTIFICATE.c.issuer_id == bindparam("ca_id"), _CERTIFICATE.c.status.in_(("revoked", "on-hold")))
    .execution_options(yield_per=_REVOKED_BATCH)
)


def revoked_entries(session: Session, ca_id: str) -> Iterator[tuple[str, dt.datetime, str]]:
    """(serial hex, revocation time, reason) of every revoked or held certificate of a CA, streamed.

    A CRL of a million entries holds a million of these at once, so each costs as little as
    possible: Core rows (no ORM), unpacked straight into a plain tuple, and one shared string
    per reason instead of a fresh copy per row. Times are as the database returns them (naive
    UTC from SQLite).
    """
    reasons: dict[str, str] = {}
    result = session.connection().execute(_REVOKED_QUERY, {"ca_id": ca_id})
    for partition in result.partitions():
        # A comprehension per partition: a generator step per row costs more than the row.
        yield from [(serial, at, reasons.setdefault(reason, reason)) for serial, at, reason in partition]


def next_crl_number(session: Session, ca_id: str) -> int:
    """Reserve the next CRL number; the CA row lock keeps numbers strictly increasing across processes."""
    ca = get_ca(session, ca_id, lock=True)
    ca.crl_number += 1
    session.flush()
    return ca.crl_number


def add_crl(session: Session, row: CrlRow) -> None:
    session.add(row)


def latest_crl(session: Session, ca_id: str, kind: str = "full") -> CrlRow | None:
    """The newest stored CRL of ``kind`` (``full`` or ``delta``) of a CA, or None."""
    query = (
        select(CrlRow)
        .where(CrlRow.ca_id == ca_id, CrlRow.kind == kind)
        .order_by(CrlRow.number.desc())  # type: ignore[attr-defined]
        .limit(1)
    )
    return session.execute(query).scalar_one_or_none()


_CHANGED_QUERY = (
    select(
        _CERTIFICATE.c.serial,
        _CERTIFICATE.c.revoked_at,
        _CERTIFICATE.c.revocation_reason,
        _CERTIFICATE.c.status_changed_at,
    )
    .where(_CERTIFICATE.c.issuer_id == bindparam("ca_id"), _CERTIFICATE.c.status_changed_at >= bindparam("since"))
    .execution_options(yield_per=_REVOKED_BATCH)
)


def changed_entries_since(
    session: Session, ca_id: str, since: dt.datetime
) -> Iterator[tuple[str, dt.datetime | None, str | None, dt.datetime]]:
    """(serial hex, revocation time, reason, status change time) of every certificate of a CA
    whose status changed (revoke, hold, release) at or after ``since``, streamed.

    A released certificate has no revocation time and no reason. The range scan runs on the
    ``(issuer_id, status_changed_at)`` index; times are as the database returns them.
    """
    result = session.connection().execute(_CHANGED_QUERY, {"ca_id": ca_id, "since": since})
    for partition in result.partitions():
        yield from [(serial, at, reason, changed) for serial, at, reason, changed in partition]


def last_status_change(session: Session, ca_id: str) -> dt.datetime | None:
    """When a certificate of the CA last changed status (aware UTC), or None; one index lookup."""
    from pki.core.clock import utc

    query = select(func.max(_CERTIFICATE.c.status_changed_at)).where(_CERTIFICATE.c.issuer_id == ca_id)
    value = session.connection().execute(query).scalar_one_or_none()
    return utc(value) if value is not None else None


def status_seq(session: Session, ca_id: str) -> int:
    """The CA's status feed sequence number (0 before its first status change); one key lookup."""
    query = select(StatusFeedRow.seq).where(StatusFeedRow.ca_id == ca_id)  # type: ignore[arg-type]
    value = session.connection().execute(query).scalar_one_or_none()
    return int(value) if value is not None else 0


def get_setting(session: Session, key: str) -> str | None:
    row = session.get(SettingRow, key)
    return row.value if row else None


def set_setting(session: Session, key: str, value: str) -> None:
    row = session.get(SettingRow, key)
    if row is None:
        session.add(SettingRow(key=key, value=value))
    else:
        row.value = value
