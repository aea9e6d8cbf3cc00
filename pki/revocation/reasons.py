"""Revocation semantics (RFC 5280 §5.3.1): reasons, what may be revoked, and releasing a hold.

``certificateHold`` is the only reversible state; any final reason may follow a hold.
``removeFromCRL`` is not something a user asks for: it is what a delta CRL says after a
release. Revocation status lives in the database, indexed by issuer and serial.
"""

from __future__ import annotations

import datetime as dt
import re
from enum import StrEnum

from cryptography import x509
from sqlalchemy.orm import Session

from pki.core.clock import Clock
from pki.core.errors import Conflict, InvalidInput
from pki.operations import audit
from pki.store import repository
from pki.store.models import CertificateRow

__all__ = [
    "RevocationReason",
    "apply_revocation",
    "parse_reason",
    "reason_flag",
    "release_hold",
    "revoke_row",
    "status_change_time",
]


class RevocationReason(StrEnum):
    UNSPECIFIED = "unspecified"
    KEY_COMPROMISE = "keyCompromise"
    CA_COMPROMISE = "cACompromise"
    AFFILIATION_CHANGED = "affiliationChanged"
    SUPERSEDED = "superseded"
    CESSATION_OF_OPERATION = "cessationOfOperation"
    CERTIFICATE_HOLD = "certificateHold"
    PRIVILEGE_WITHDRAWN = "privilegeWithdrawn"
    AA_COMPROMISE = "aACompromise"

    @property
    def flag(self) -> x509.ReasonFlags:
        return _FLAGS[self]


_FLAGS = {
    RevocationReason.UNSPECIFIED: x509.ReasonFlags.unspecified,
    RevocationReason.KEY_COMPROMISE: x509.ReasonFlags.key_compromise,
    RevocationReason.CA_COMPROMISE: x509.ReasonFlags.ca_compromise,
    RevocationReason.AFFILIATION_CHANGED: x509.ReasonFlags.affiliation_changed,
    RevocationReason.SUPERSEDED: x509.ReasonFlags.superseded,
    RevocationReason.CESSATION_OF_OPERATION: x509.ReasonFlags.cessation_of_operation,
    RevocationReason.CERTIFICATE_HOLD: x509.ReasonFlags.certificate_hold,
    RevocationReason.PRIVILEGE_WITHDRAWN: x509.ReasonFlags.privilege_withdrawn,
    RevocationReason.AA_COMPROMISE: x509.ReasonFlags.aa_compromise,
}
_BY_FOLDED = {re.sub(r"[^a-z]", "", r.value.lower()): r for r in RevocationReason}


def parse_reason(text: str) -> RevocationReason:
    """Accept RFC 5280 names in any case and with or without separators (key-compromise, keyCompromise)."""
    reason = _BY_FOLDED.get(re.sub(r"[^a-z]", "", text.lower()))
    if reason is None:
        names = ", ".join(r.value for r in RevocationReason)
        raise InvalidInput(f"unknown revocation reason {text!r}; use one of {names}")
    return reason


def apply_revocation(row: CertificateRow, reason: RevocationReason, at: dt.datetime) -> None:
    if row.status == "revoked":
        raise Conflict(f"certificate {row.serial} of {row.issuer_id} is already revoked ({row.revocation_reason})")
    if row.status == "on-hold" and reason is RevocationReason.CERTIFICATE_HOLD:
        raise Conflict(f"certificate {row.serial} of {row.issuer_id} is already on hold")
    row.status = "on-hold" if reason is RevocationReason.CERTIFICATE_HOLD else "revoked"
    if row.revoked_at is None:  # a hold made final keeps the time the hold began
        row.revoked_at = at
    row.revocation_reason = reason.value
    _stamp(row, at)


def release_hold(row: CertificateRow, at: dt.datetime) -> None:
    if row.status != "on-hold":
        raise Conflict(f"certificate {row.serial} of {row.issuer_id} is not on hold (status {row.status})")
    row.status = "valid"
    row.revoked_at = None
    row.revocation_reason = None
    _stamp(row, at)


def _stamp(row: CertificateRow, at: dt.datetime) -> None:
    row.status_changed_at = at
    row.status_version = (row.status_version or 0) + 1


def status_change_time(session: Session, ca_id: str, clock: Clock) -> dt.datetime:
    """The time to stamp on a status change of a certificate of ``ca_id``, taken under the CA row lock.

    CRL generation (:mod:`pki.revocation.crl_publishing`) holds the same lock while it reads the revoked entries and
    stamps thisUpdate. With the time taken after the lock, a CRL is either made before the change
    (thisUpdate ≤ the change's time, so the change makes it stale once committed) or after the change
    committed (and lists it). Taken before the lock, a slow commit could be stamped earlier than a CRL
    that did not see it, and that CRL would pass for current.
    """
    repository.get_ca(session, ca_id, lock=True)
    return clock.now()


def revoke_row(
    session: Session,
    row: CertificateRow,
    reason: RevocationReason,
    *,
    clock: Clock,
    actor: str,
    details: dict[str, object] | None = None,
) -> dt.datetime:
    """Revoke a stored certificate inside ``session``'s transaction, with its ``revoke`` audit record.

    The time is taken under the CA row lock (:func:`status_change_time`); ``details`` add to the
    record's reason and fingerprint. Returns the time of the change.
    """
    changed_at = status_change_time(session, row.issuer_id, clock)
    apply_revocation(row, reason, changed_at)
    audit.append(
        session,
        at=changed_at,
        actor=actor,
        action="revoke",
        ca_id=row.issuer_id,
        serial=row.serial,
        details={"reason": reason.value, "sha256": row.sha256, **(details or {})},
    )
    return changed_at


def reason_flag(reason: str | None) -> x509.ReasonFlags | None:
    """The reason code CRLs and OCSP state for a stored reason; None for none or "unspecified".

    RFC 5280 §5.3.1: the reason code SHOULD be absent rather than "unspecified" (RFC 6960 follows it).
    """
    if reason is None or reason == RevocationReason.UNSPECIFIED.value:
        return None
    return RevocationReason(reason).flag
