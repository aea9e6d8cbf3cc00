"""Firmware signing for OCPP secure firmware update (2.0.1/2.1 L01 UpdateFirmware, 1.6 SignedUpdateFirmware).

This module owns :func:`sign_firmware`: the checks of the request before anything is read, the
streamed digest of the file, and the signature with the key of the newest valid firmware signer
(:mod:`pki.firmware.signers` chooses it; :mod:`pki.firmware.scheme` says what is signed), stored
with its audit record in one write transaction. The result builds the OCPP request payloads
(:mod:`pki.firmware.payloads`); :mod:`pki.firmware.verification` checks a signed file.
"""

from __future__ import annotations

import base64
import datetime as dt
from collections.abc import Iterable

from cryptography.hazmat.primitives import hashes

from pki.core.clock import utc
from pki.firmware.payloads import (
    INT32_MAX,
    FirmwareSignature,
    OcppVersion,
    check_location,
    ocpp_date_time,
    ocpp_integer,
)
from pki.firmware.scheme import firmware_digest
from pki.firmware.signers import check_key_matches, signer_key_id, usable_signer
from pki.operations import audit
from pki.runtime.context import Context
from pki.runtime.views import pem

__all__ = ["sign_firmware"]


def sign_firmware(
    ctx: Context,
    chunks: Iterable[bytes],
    *,
    location: str | None,
    max_bytes: int,
    actor: str,
    retrieve_at: dt.datetime | None = None,
    signer_ca: str | None = None,
    payloads: Iterable[OcppVersion] = (),
    request_id: int | None = None,
) -> FirmwareSignature:
    """Sign the SHA-256 of a firmware file, streamed as ``chunks``, with the firmware-signer key.

    The signer is the newest valid firmware-signer certificate: after a rollover of ``mf-root``
    the new generation's, and the old one's only while no newer one may sign. Refuses an empty
    file or one over ``max_bytes`` (:class:`InvalidInput`), a signer that is expired, revoked, on
    hold or not directly under a manufacturer root (:class:`PolicyViolation`, for the newest signer
    when none is valid), and a PKI without a firmware signer (:class:`NotFound`). The signature and
    its audit record are one write transaction.

    ``signer_ca`` picks the signer of one manufacturer root generation instead, e.g. ``mf-root``
    for stations that do not hold ``mf-root-2`` yet; anything but a manufacturer root is
    :class:`InvalidInput`.

    ``payloads`` names the OCPP versions whose request payloads the caller will build from the
    result with ``request_id``; their fields are checked here, before anything is signed or audited,
    so that a payload refused afterwards cannot leave a signature nobody received.
    """
    if location is not None:
        check_location(location, "2.1")  # the most any OCPP version carries
    for version in payloads:
        check_location(location, version)
    if request_id is not None:
        ocpp_integer(request_id, "requestId", minimum=-INT32_MAX - 1)
    if retrieve_at is not None:
        ocpp_date_time(retrieve_at, "retrieve_at")
    # Checked before reading what may be gigabytes; the write transaction below decides.
    with ctx.database.read() as session:
        row, _, _ = usable_signer(ctx, session, signer_ca)
        key_id = signer_key_id(row)
    signer = ctx.keys.load(key_id)  # may decrypt the key: done outside the write transaction
    digest, size = firmware_digest(chunks, max_bytes)
    with ctx.database.write() as session:
        now = ctx.clock.now()
        row, certificate, algorithm = usable_signer(ctx, session, signer_ca)
        if signer_key_id(row) != signer.key_id:  # the signer was replaced while the file was read
            signer = ctx.keys.load(signer_key_id(row))
        check_key_matches(signer, certificate, row)
        # OCPP 2.0.1 L01.FR.04: signature over the SHA-256 of the entire file, RSA-PSS for RSA keys.
        signature = signer.sign_digest(digest, hashes.SHA256(), rsa_pss=True)
        audit.append(
            session,
            at=now,
            actor=actor,
            action="firmware-sign",
            ca_id=row.issuer_id,
            serial=row.serial,
            details={"sha256": digest.hex(), "size": size, "location": location},
        )
    return FirmwareSignature(
        sha256=digest.hex(),
        size=size,
        signature=base64.b64encode(signature).decode("ascii"),
        algorithm=algorithm,
        certificate_pem=pem(certificate),
        signer_serial=row.serial,
        location=location,
        retrieve_at=utc(retrieve_at) if retrieve_at is not None else None,
        signer_ca=row.issuer_id,
    )
