"""The append-only, hash-chained audit log.

Each record's hash is SHA-256 over the previous record's hash and the record's own fields
in a canonical JSON form, so altering, removing or reordering any record breaks every hash
after it. The head row (last seq and hash) is locked for each append, which serialises
appenders across processes on PostgreSQL; on SQLite the write transaction already does.
Appending happens inside the caller's transaction: the record commits with the change it
describes, or neither does.

:func:`append_many_on` appends a batch (group-committed issuances, :mod:`pki.ca.group_commit`):
one record per change, chained exactly as single appends would chain them, but the head is
locked, read and updated once and the records are inserted in one statement, so the head lock
is held for one short step per batch rather than one per record.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, bindparam, insert, select, update
from sqlalchemy.orm import Session

from pki.core.clock import utc
from pki.store.models import AuditHead, AuditRecord

__all__ = [
    "GENESIS_HASH",
    "AuditEntry",
    "AuditVerification",
    "PendingRecord",
    "append",
    "append_many_on",
    "append_on",
    "read_records",
    "record_hash",
    "verify",
]

GENESIS_HASH = "0" * 64
_VERIFY_BATCH = 2000

_HEAD = AuditHead.__table__  # type: ignore[attr-defined]
# FOR UPDATE serialises appenders on PostgreSQL; SQLite's write transaction already does.
_HEAD_FOR_UPDATE = select(_HEAD.c.seq, _HEAD.c.hash).where(_HEAD.c.id == 1).with_for_update()
_INSERT_HEAD = insert(_HEAD)
_UPDATE_HEAD = update(_HEAD).where(_HEAD.c.id == 1).values(seq=bindparam("new_seq"), hash=bindparam("new_hash"))
_INSERT_RECORD = insert(AuditRecord.__table__)  # type: ignore[attr-defined]


@dataclass(frozen=True, slots=True)
class AuditEntry:
    """One appended record, as stored."""

    seq: int
    at: dt.datetime
    actor: str
    action: str
    ca_id: str | None
    serial: str | None
    details: str  # canonical JSON
    prev_hash: str
    hash: str


def read_records(
    session: Session, *, after: int = 0, limit: int = 100, action: str | None = None, ca_id: str | None = None
) -> list[AuditEntry]:
    """Records with ``seq > after`` in order, at most ``limit`` (keyset pagination by ``seq``)."""
    statement = select(AuditRecord).where(AuditRecord.seq > after)  # type: ignore[arg-type]
    if action is not None:
        statement = statement.where(AuditRecord.action == action)  # type: ignore[arg-type]
    if ca_id is not None:
        statement = statement.where(AuditRecord.ca_id == ca_id)  # type: ignore[arg-type]
    rows = session.execute(statement.order_by(AuditRecord.seq).limit(limit)).scalars()  # type: ignore[arg-type]
    return [
        AuditEntry(
            row.seq, utc(row.at), row.actor, row.action, row.ca_id, row.serial, row.details, row.prev_hash, row.hash
        )
        for row in rows
    ]


def _canonical(value: dict[str, Any]) -> bytes:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def record_hash(
    *,
    seq: int,
    at: dt.datetime,
    actor: str,
    action: str,
    ca_id: str | None,
    serial: str | None,
    details: str,
    prev_hash: str,
) -> str:
    body = {
        "seq": seq,
        "at": utc(at).isoformat(),
        "actor": actor,
        "action": action,
        "ca_id": ca_id,
        "serial": serial,
        "details": details,
        "prev_hash": prev_hash,
    }
    return hashlib.sha256(prev_hash.encode() + b"\n" + _canonical(body)).hexdigest()


def append(
    session: Session,
    *,
    at: dt.datetime,
    actor: str,
    action: str,
    ca_id: str | None = None,
    serial: str | None = None,
    details: dict[str, Any] | None = None,
) -> AuditEntry:
    """Append one record inside ``session``'s transaction."""
    return append_on(
        session.connection(), at=at, actor=actor, action=action, ca_id=ca_id, serial=serial, details=details
    )


def append_on(
    connection: Connection,
    *,
    at: dt.datetime,
    actor: str,
    action: str,
    ca_id: str | None = None,
    serial: str | None = None,
    details: dict[str, Any] | None = None,
) -> AuditEntry:
    """:func:`append` on a Core connection that is inside a transaction."""
    # Core statements rather than ORM objects: this runs once per issuance, and building the
    # two ORM objects cost more than the three statements themselves.
    head = connection.execute(_HEAD_FOR_UPDATE).first()
    prev_seq, prev_hash = (head.seq, head.hash) if head is not None else (0, GENESIS_HASH)
    details_text = _canonical(details or {}).decode()
    seq = prev_seq + 1
    digest = record_hash(
        seq=seq,
        at=at,
        actor=actor,
        action=action,
        ca_id=ca_id,
        serial=serial,
        details=details_text,
        prev_hash=prev_hash,
    )
    entry = AuditEntry(seq, at, actor, action, ca_id, serial, details_text, prev_hash, digest)
    connection.execute(
        _INSERT_RECORD,
        {
            "seq": seq,
            "at": at,
            "actor": actor,
            "action": action,
            "ca_id": ca_id,
            "serial": serial,
            "details": details_text,
            "prev_hash": prev_hash,
            "hash": digest,
        },
    )
    if head is None:
        connection.execute(_INSERT_HEAD, {"id": 1, "seq": seq, "hash": digest})
    else:
        connection.execute(_UPDATE_HEAD, {"new_seq": seq, "new_hash": digest})
    return entry


@dataclass(frozen=True, slots=True)
class PendingRecord:
    """A record to append with :func:`append_many_on`; ``details`` as for :func:`append`."""

    at: dt.datetime
    actor: str
    action: str
    ca_id: str | None = None
    serial: str | None = None
    details: dict[str, Any] | None = None


def append_many_on(connection: Connection, records: Sequence[PendingRecord]) -> list[AuditEntry]:
    """Append ``records`` in order inside ``connection``'s transaction, updating the head once.

    The chain is the one :func:`append_on` called once per record would build: each record's
    ``prev_hash`` is the hash of the one before it, so :func:`verify` cannot tell the difference.
    """
    if not records:
        return []
    head = connection.execute(_HEAD_FOR_UPDATE).first()
    seq, prev_hash = (head.seq, head.hash) if head is not None else (0, GENESIS_HASH)
    entries: list[AuditEntry] = []
    rows: list[dict[str, Any]] = []
    for record in records:
        seq += 1
        details_text = _canonical(record.details or {}).decode()
        digest = record_hash(
            seq=seq,
            at=record.at,
            actor=record.actor,
            action=record.action,
            ca_id=record.ca_id,
            serial=record.serial,
            details=details_text,
            prev_hash=prev_hash,
        )
        entries.append(
            AuditEntry(
                seq,
                record.at,
                record.actor,
                record.action,
                record.ca_id,
                record.serial,
                details_text,
                prev_hash,
                digest,
            )
        )
        rows.append(
            {
                "seq": seq,
                "at": record.at,
                "actor": record.actor,
                "action": record.action,
                "ca_id": record.ca_id,
                "serial": record.serial,
                "details": details_text,
                "prev_hash": prev_hash,
                "hash": digest,
            }
        )
        prev_hash = digest
    connection.execute(_INSERT_RECORD, rows)
    if head is None:
        connection.execute(_INSERT_HEAD, {"id": 1, "seq": seq, "hash": prev_hash})
    else:
        connection.execute(_UPDATE_HEAD, {"new_seq": seq, "new_hash": prev_hash})
    return entries


@dataclass(frozen=True, slots=True)
class AuditVerification:
    ok: bool
    records: int
    first_broken_seq: int | None = None
    reason: str | None = None


def verify(session: Session) -> AuditVerification:
    """Walk the chain in order; report the first record whose hash, link or sequence is wrong."""
    expected_prev = GENESIS_HASH
    expected_seq = 1
    count = 0
    rows = session.execute(select(AuditRecord).order_by(AuditRecord.seq).execution_options(yield_per=_VERIFY_BATCH))
    for record in rows.scalars():
        if record.seq != expected_seq:
            return AuditVerification(False, count, expected_seq, f"record {expected_seq} is missing")
        if record.prev_hash != expected_prev:
            return AuditVerification(False, count, record.seq, "its link to the previous record is wrong")
        digest = record_hash(
            seq=record.seq,
            at=record.at,
            actor=record.actor,
            action=record.action,
            ca_id=record.ca_id,
            serial=record.serial,
            details=record.details,
            prev_hash=record.prev_hash,
        )
        if digest != record.hash:
            return AuditVerification(False, count, record.seq, "its contents do not match its hash")
        expected_prev = record.hash
        expected_seq += 1
        count += 1
    head = session.get(AuditHead, 1)
    head_seq, head_hash = (head.seq, head.hash) if head else (0, GENESIS_HASH)
    if head_seq != count or head_hash != expected_prev:
        return AuditVerification(
            False, count, count + 1, f"the log ends at record {count} but its head says {head_seq}"
        )
    return AuditVerification(True, count)
