"""The append-only, hash-chained audit log.

Each record's hash is SHA-256 over the previous record's hash and the record's own fields
in a canonical JSON form, so altering, removing or reordering any record breaks every hash
after it. The head row (last seq and hash) is locked for each append, which serialises
appenders across processes on PostgreSQL; on SQLite the write transaction already does.
Appending happens inside the caller's transaction: the record commits with the change it
describes, or neither does.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from pki.clock import utc
from pki.store.models import AuditHead, AuditRecord

__all__ = ["GENESIS_HASH", "AuditVerification", "append", "record_hash", "verify"]

GENESIS_HASH = "0" * 64
_VERIFY_BATCH = 2000


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
) -> AuditRecord:
    head = session.execute(select(AuditHead).where(AuditHead.id == 1).with_for_update()).scalar_one_or_none()
    if head is None:
        head = AuditHead(id=1, seq=0, hash=GENESIS_HASH)
        session.add(head)
    details_text = _canonical(details or {}).decode()
    seq = head.seq + 1
    digest = record_hash(
        seq=seq,
        at=at,
        actor=actor,
        action=action,
        ca_id=ca_id,
        serial=serial,
        details=details_text,
        prev_hash=head.hash,
    )
    record = AuditRecord(
        seq=seq,
        at=at,
        actor=actor,
        action=action,
        ca_id=ca_id,
        serial=serial,
        details=details_text,
        prev_hash=head.hash,
        hash=digest,
    )
    session.add(record)
    head.seq = seq
    head.hash = digest
    return record


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
