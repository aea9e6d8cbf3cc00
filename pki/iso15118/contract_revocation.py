"""Ending a contract: :func:`revoke_contract` and the contract certificates it takes with it.

Revoking a contract revokes, in the same transaction, every contract certificate for its eMAID
that could still be used (``cessationOfOperation``), the current one included: a vehicle must
not keep charging on a terminated contract. The caller republishes the CRLs afterwards
(:meth:`pki.iso15118.service.Contracts.revoke`).
"""

from __future__ import annotations

import datetime as dt

from sqlalchemy import and_, or_, select
from sqlalchemy.orm import Session

from pki.ca.profiles import ProfileName
from pki.core.clock import utc
from pki.core.errors import Conflict, NotFound
from pki.iso15118.contract_input import checked_note, normalise_emaid
from pki.iso15118.contract_registry import row_by_emaid
from pki.iso15118.contract_views import CertificateRef, ContractRevocation, ContractView
from pki.operations import audit
from pki.revocation.reasons import RevocationReason, revoke_row
from pki.runtime.context import Context
from pki.store.models import CertificateRow, ContractRow

__all__ = ["revoke_contract"]

_CONTRACT_PROFILE = ProfileName.CONTRACT.value


def revoke_contract(ctx: Context, emaid: str, *, note: str | None = None, actor: str = "system") -> ContractRevocation:
    """End the contract now and revoke its usable contract certificates; :class:`Conflict` if already revoked."""
    normalised = normalise_emaid(emaid)
    clean_note = checked_note(note, "revocation note")
    now = ctx.clock.now()
    reason = RevocationReason.CESSATION_OF_OPERATION  # RFC 5280 §5.3.1: the contract ended, no compromise
    with ctx.database.write() as session:
        row = row_by_emaid(session, normalised, lock=True)
        if row is None:
            raise NotFound(f"no contract with eMAID {normalised}")
        if row.status == "revoked":
            assert row.revoked_at is not None
            raise Conflict(f"contract {normalised} is already revoked (since {utc(row.revoked_at).isoformat()})")
        row.status = "revoked"
        row.revoked_at = now
        row.updated_at = now
        row.revocation_note = clean_note
        revoked = []
        for certificate in _usable_certificates(session, row, now):
            revoke_row(session, certificate, reason, clock=ctx.clock, actor=actor, details={"contract": normalised})
            revoked.append(CertificateRef(certificate.issuer_id, certificate.serial))
        audit.append(
            session,
            at=now,
            actor=actor,
            action="contract-revoke",
            details={
                "emaid": normalised,
                "pcid": row.pcid,
                "certificates": [f"{ref.issuer_id}/{ref.serial}" for ref in revoked],
            },
        )
        session.flush()
        return ContractRevocation(ContractView.from_row(row, now), tuple(revoked))


def _usable_certificates(session: Session, row: ContractRow, now: dt.datetime) -> list[CertificateRow]:
    """Unexpired contract certificates for the eMAID that are valid or on hold, the current one included.

    Earlier certificates count too: one replaced by CertificateUpdate stays cryptographically
    valid until it expires, and so does one issued outside the registry for the same eMAID.
    """
    mine = and_(CertificateRow.profile == _CONTRACT_PROFILE, CertificateRow.identity == row.emaid)
    if row.current_certificate_issuer and row.current_certificate_serial:
        current = and_(
            CertificateRow.issuer_id == row.current_certificate_issuer,
            CertificateRow.serial == row.current_certificate_serial,
        )
        mine = or_(mine, current)
    query = (
        select(CertificateRow)
        .where(mine, CertificateRow.status.in_(("valid", "on-hold")), CertificateRow.not_after > now)  # type: ignore[attr-defined,operator]
        .order_by(CertificateRow.id)
        .with_for_update()
    )
    return list(session.execute(query).scalars())
