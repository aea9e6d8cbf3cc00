"""``/api/v1/audit``: read and verify the hash-chained audit log (auditor, admin)."""

from __future__ import annotations

import json
from typing import Annotated

from fastapi import APIRouter, Query

from api.deps import PkiDep, allow
from api.problems import PROBLEM_RESPONSES
from api.schemas import MAX_ROW_NUMBER, AuditRecordOut, AuditVerificationOut
from pki.operations import Role

router = APIRouter(prefix="/api/v1/audit", tags=["audit"], responses=PROBLEM_RESPONSES)


@router.get("", summary="Audit records after a sequence number, oldest first", **allow(Role.AUDITOR))
def records(
    pki: PkiDep,
    after: Annotated[int, Query(ge=0, le=MAX_ROW_NUMBER, description="return records with seq > after")] = 0,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    action: Annotated[str | None, Query(description="e.g. issue, revoke, crl")] = None,
    ca: Annotated[str | None, Query(description="CA id")] = None,
) -> list[AuditRecordOut]:
    return [
        AuditRecordOut(
            seq=entry.seq,
            at=entry.at,
            actor=entry.actor,
            action=entry.action,
            ca_id=entry.ca_id,
            serial=entry.serial,
            details=json.loads(entry.details),
            prev_hash=entry.prev_hash,
            hash=entry.hash,
        )
        for entry in pki.audit.records(after=after, limit=limit, action=action, ca_id=ca)
    ]


@router.get("/verify", summary="Verify the whole hash chain", **allow(Role.AUDITOR))
def verify(pki: PkiDep) -> AuditVerificationOut:
    result = pki.audit.verify()
    return AuditVerificationOut(
        ok=result.ok, records=result.records, first_broken_seq=result.first_broken_seq, reason=result.reason
    )
