"""Which firmware signer may sign: the manufacturer roots and the newest valid ``firmware-signer``.

This module owns the choice of the signer and the checks it passes first: valid now, neither revoked
nor on hold, issued directly by a *manufacturer root* (OCPP L01: no intermediates), that root usable,
an RSA or EC key that evpki holds and that belongs to the certificate.

The manufacturer roots are ``mf-root`` and the generations ``evpki ca rollover mf-root`` made from
it (``mf-root-2``, ...: the roots of its PKI). A rollover gives the new root its own firmware
signer; the old signer keeps verifying while the old root is valid and not revoked, because
stations in the field hold the old ManufacturerRootCertificate until root reconciliation (OCPP
M05) gives them the new one.
"""

from __future__ import annotations

import datetime as dt

from cryptography import x509
from sqlalchemy import select
from sqlalchemy.orm import Session

from pki.core.clock import utc
from pki.core.errors import IntegrityError, InvalidInput, NotFound, PolicyViolation
from pki.firmware.scheme import signature_algorithm
from pki.keys.base import Signer
from pki.runtime.context import CaDirectory, Context
from pki.store import repository
from pki.store.models import CertificateAuthorityRow, CertificateRow

__all__ = [
    "FIRMWARE_SIGNER_LABEL",
    "MANUFACTURER_ROOT",
    "check_key_matches",
    "manufacturer_roots",
    "revoked_since",
    "signer_key_id",
    "usable_signer",
]

MANUFACTURER_ROOT = "mf-root"
FIRMWARE_SIGNER_LABEL = "firmware-signer"


def manufacturer_roots(session: Session) -> list[CertificateAuthorityRow]:
    """``mf-root`` and every generation rolled over from it (the roots of its PKI), newest first."""
    first = repository.get_ca(session, MANUFACTURER_ROOT)
    roots = [row for row in repository.list_cas(session) if row.is_root and row.pki == first.pki]
    return sorted(roots, key=lambda row: (utc(row.created_at), row.id), reverse=True)


def usable_signer(
    ctx: Context, session: Session, signer_ca: str | None = None
) -> tuple[CertificateRow, x509.Certificate, str]:
    """The newest valid firmware-signer row (of root ``signer_ca`` if given), its certificate and algorithm.

    Valid: stored as valid, within its validity, issued by a manufacturer root that is itself
    usable. When none is, the newest signer is checked, so the refusal names its actual fault.
    """
    roots = {row.id for row in manufacturer_roots(session)}
    if signer_ca is not None and signer_ca not in roots:
        raise InvalidInput(f"{signer_ca!r} is not a manufacturer root; use one of {', '.join(sorted(roots))}")
    query = select(CertificateRow).where(CertificateRow.label == FIRMWARE_SIGNER_LABEL)
    if signer_ca is not None:
        query = query.where(CertificateRow.issuer_id == signer_ca)
    rows = list(session.execute(query.order_by(CertificateRow.id.desc())).scalars())  # type: ignore[union-attr]
    if not rows:
        where = f" issued by {signer_ca}" if signer_ca is not None else ""
        raise NotFound(f"this PKI has no firmware-signer certificate{where}; run `evpki init` to create it")
    directory = ctx.ca_directory(session.connection())
    now = ctx.clock.now()
    chosen = next((row for row in rows if _valid_signer(ctx, directory, roots, row, now)), rows[0])
    return _checked_signer(ctx, directory, roots, chosen, now)


def _valid_signer(ctx: Context, directory: CaDirectory, roots: set[str], row: CertificateRow, now: dt.datetime) -> bool:
    if row.issuer_id not in roots or row.status != "valid":
        return False
    if not utc(row.not_before) <= now < utc(row.not_after):
        return False
    try:
        ctx.check_chain_usable(directory, row.issuer_id)
    except PolicyViolation:
        return False  # e.g. the old generation after its root was revoked
    return True


def _checked_signer(
    ctx: Context, directory: CaDirectory, roots: set[str], row: CertificateRow, now: dt.datetime
) -> tuple[CertificateRow, x509.Certificate, str]:
    what = f"the firmware-signer certificate {row.serial}"
    # OCPP L01 remarks: the manufacturer signs firmware without intermediate certificates.
    if row.issuer_id not in roots:
        raise PolicyViolation(
            "firmware.signer-issuer",
            f"{what} is issued by {row.issuer_id}, not directly by {MANUFACTURER_ROOT} or a generation of it",
        )
    if row.status == "revoked":
        raise PolicyViolation(
            "firmware.signer-revoked", f"{what} is revoked ({row.revocation_reason}){revoked_since(row)}"
        )
    if row.status == "on-hold":
        raise PolicyViolation(
            "firmware.signer-on-hold", f"{what} is on hold{revoked_since(row)}; release the hold before signing"
        )
    if utc(row.not_before) > now:
        raise PolicyViolation(
            "firmware.signer-not-yet-valid", f"{what} is not valid before {utc(row.not_before).isoformat()}"
        )
    if utc(row.not_after) <= now:
        raise PolicyViolation("firmware.signer-expired", f"{what} expired on {utc(row.not_after).isoformat()}")
    certificate = x509.load_der_x509_certificate(row.der)
    algorithm = signature_algorithm(certificate.public_key())
    if algorithm is None:
        raise PolicyViolation(
            "firmware.signer-algorithm",
            f"{what} has a {type(certificate.public_key()).__name__}: firmware is signed as a streamed SHA-256 "
            "digest (OCPP L01.FR.04), which EdDSA cannot sign; give [pki.mf] an ec-* or rsa-* algorithm",
        )
    ctx.check_chain_usable(directory, row.issuer_id)
    return row, certificate, algorithm


def signer_key_id(row: CertificateRow) -> str:
    if row.key_id is None:
        raise PolicyViolation(
            "firmware.signer-key", f"evpki does not hold the key of the firmware-signer certificate {row.serial}"
        )
    return row.key_id


def check_key_matches(signer: Signer, certificate: x509.Certificate, row: CertificateRow) -> None:
    if signer.public_key() != certificate.public_key():
        raise IntegrityError(f"key {signer.key_id!r} does not belong to the firmware-signer certificate {row.serial}")


def revoked_since(row: CertificateRow) -> str:
    """`` since <revocation time>`` for a message about a revoked or held certificate, if the time is known."""
    return f" since {utc(row.revoked_at).isoformat()}" if row.revoked_at is not None else ""
