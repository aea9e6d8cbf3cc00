"""Firmware verification, as a CSMS should run it before it sends an update (OCPP 2.0.1 A00.FR.707).

This module owns the checks of a signed file: the signing certificate is one a manufacturer root
issued (any generation: during a rollover a station may hold either), has the firmware-signer
properties, is valid and not revoked, its root is usable, and the signature matches the file; and
the parsing of the Base64 signature and PEM certificate an UpdateFirmware request carries.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, cast

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import Prehashed
from sqlalchemy.orm import Session

from pki.ca.authority import fingerprint, serial_hex
from pki.ca.profiles import ProfileName
from pki.core.errors import InvalidInput, NotFound, PolicyViolation, VerificationFailed
from pki.firmware.scheme import firmware_digest, signature_algorithm
from pki.firmware.signers import manufacturer_roots, revoked_since
from pki.runtime.context import Context
from pki.store import repository
from pki.store.models import CertificateRow

__all__ = ["FirmwareVerification", "verify_firmware"]


@dataclass(frozen=True, slots=True)
class FirmwareVerification:
    """A firmware file whose signature and signing certificate checked out."""

    sha256: str
    size: int
    algorithm: str
    signer_subject: str
    signer_serial: str
    not_after: dt.datetime

    def to_json(self) -> dict[str, Any]:
        return {
            "sha256": self.sha256,
            "size": self.size,
            "algorithm": self.algorithm,
            "signer_subject": self.signer_subject,
            "signer_serial": self.signer_serial,
            "not_after": self.not_after.isoformat(),
        }


def verify_firmware(
    ctx: Context,
    chunks: Iterable[bytes],
    *,
    signature_b64: str,
    certificate_pem: str | bytes,
    max_bytes: int,
) -> FirmwareVerification:
    """Check a firmware file streamed as ``chunks`` against its Base64 signature and signing certificate.

    Malformed input (PEM, Base64, an empty or oversized file) is :class:`InvalidInput`; every
    failed check is :class:`VerificationFailed` saying which one.
    """
    signature = _decode_signature(signature_b64)
    certificate = _parse_certificate(certificate_pem)
    _check_signing_certificate(ctx, certificate)  # before reading the file: fail fast
    digest, size = firmware_digest(chunks, max_bytes)
    # Again after the read, so that the verdict states the revocation status of its own moment.
    _check_signing_certificate(ctx, certificate)
    public_key = certificate.public_key()
    try:
        if isinstance(public_key, rsa.RSAPublicKey):
            # Salt length AUTO: a signer using the maximum salt (OpenSSL's default) verifies too.
            pss = padding.PSS(mgf=padding.MGF1(hashes.SHA256()), salt_length=padding.PSS.AUTO)
            public_key.verify(signature, digest, pss, Prehashed(hashes.SHA256()))
        else:
            cast(ec.EllipticCurvePublicKey, public_key).verify(signature, digest, ec.ECDSA(Prehashed(hashes.SHA256())))
    except InvalidSignature:
        raise VerificationFailed(
            "signature does not match the file: the file was altered or signed by another key"
        ) from None
    return FirmwareVerification(
        sha256=digest.hex(),
        size=size,
        algorithm=cast(str, signature_algorithm(public_key)),
        signer_subject=certificate.subject.rfc4514_string(),
        signer_serial=serial_hex(certificate.serial_number),
        not_after=certificate.not_valid_after_utc,
    )


def _check_signing_certificate(ctx: Context, certificate: x509.Certificate) -> None:
    serial = serial_hex(certificate.serial_number)
    what = f"signing certificate {serial} ({certificate.subject.rfc4514_string()})"
    if signature_algorithm(certificate.public_key()) is None:
        raise VerificationFailed(f"{what} has a {type(certificate.public_key()).__name__}, not an RSA or EC key")
    with ctx.database.read() as session:
        roots = manufacturer_roots(session)
        # OCPP 2.0.1 L01.FR.12: the station checks the certificate against its ManufacturerRootCertificate;
        # during a rollover a station may hold either generation, so each one is a candidate.
        root_id = next((row.id for row in roots if _directly_issued(certificate, ctx.ca_certificate(row))), None)
        if root_id is None:
            names = " or ".join(row.id for row in reversed(roots))
            raise VerificationFailed(
                f"{what} was not issued by {names} (its issuer is {certificate.issuer.rfc4514_string()})"
            )
        _check_firmware_signer_properties(certificate, what)
        now = ctx.clock.now()
        if certificate.not_valid_before_utc > now:
            raise VerificationFailed(f"{what} is not valid before {certificate.not_valid_before_utc.isoformat()}")
        if certificate.not_valid_after_utc <= now:
            raise VerificationFailed(f"{what} expired on {certificate.not_valid_after_utc.isoformat()}")
        row = _issued_row(session, certificate, what, root_id)
        # OCPP 2.0.1 L01.FR.22: a revoked signing certificate is answered with RevokedCertificate.
        if row.status == "revoked":
            raise VerificationFailed(f"{what} is revoked ({row.revocation_reason}){revoked_since(row)}")
        if row.status == "on-hold":
            raise VerificationFailed(f"{what} is on hold (certificateHold){revoked_since(row)}")
        try:
            ctx.check_chain_usable(ctx.ca_directory(session.connection()), root_id)
        except PolicyViolation as error:
            # The old signer's signatures stop verifying once its root is revoked or expired.
            raise VerificationFailed(f"{root_id} cannot vouch for {what}: {error.message}") from None


def _directly_issued(certificate: x509.Certificate, root: x509.Certificate) -> bool:
    try:
        certificate.verify_directly_issued_by(root)
    except (ValueError, TypeError, InvalidSignature):
        return False
    return True


def _check_firmware_signer_properties(certificate: x509.Certificate, what: str) -> None:
    """The firmware-signer profile as a station sees it: an end entity asserting digitalSignature."""
    try:
        extensions = certificate.extensions
        constraints = extensions.get_extension_for_class(x509.BasicConstraints).value
    except x509.ExtensionNotFound:
        constraints = None
    except ValueError:
        raise VerificationFailed(f"{what} has malformed extensions") from None
    if constraints is not None and constraints.ca:
        raise VerificationFailed(f"{what} is a CA certificate, not a firmware signer")
    try:
        usage = extensions.get_extension_for_class(x509.KeyUsage).value
    except x509.ExtensionNotFound:
        raise VerificationFailed(f"{what} has no keyUsage; a firmware signer asserts digitalSignature") from None
    if not usage.digital_signature:
        raise VerificationFailed(f"{what} does not assert the digitalSignature key usage")


def _issued_row(session: Session, certificate: x509.Certificate, what: str, root_id: str) -> CertificateRow:
    """The stored row of a certificate manufacturer root ``root_id`` issued; one this PKI never issued is refused."""
    try:
        row = repository.find_certificate(session, serial_hex(certificate.serial_number), root_id)
    except (NotFound, InvalidInput):
        raise VerificationFailed(f"{what} is not one that {root_id} of this PKI issued") from None
    if row.sha256 != fingerprint(certificate):
        raise VerificationFailed(f"{what} differs from the certificate {root_id} issued with that serial")
    if row.profile != ProfileName.FIRMWARE_SIGNER.value:
        raise VerificationFailed(f"{what} is a {row.profile} certificate, not a firmware signer")
    return row


def _decode_signature(text: str) -> bytes:
    if not isinstance(text, str):
        raise TypeError(f"the signature is a Base64 str, not {type(text).__name__}")
    compact = "".join(text.split())
    if not compact:
        raise InvalidInput("the signature is empty")
    try:
        return base64.b64decode(compact, validate=True)
    except (binascii.Error, ValueError):
        raise InvalidInput("the signature is not Base64 (OCPP firmware.signature is the Base64 signature)") from None


def _parse_certificate(data: str | bytes) -> x509.Certificate:
    if isinstance(data, str):
        data = data.encode()
    if not isinstance(data, bytes):
        raise TypeError(f"the signing certificate is PEM str or bytes, not {type(data).__name__}")
    try:
        certificates = x509.load_pem_x509_certificates(data)
    except (ValueError, x509.InvalidVersion):
        raise InvalidInput("the signing certificate is not a PEM X.509 certificate") from None
    if len(certificates) != 1:
        # OCPP L01: the signer sits directly under the manufacturer root, so no chain travels with it.
        raise InvalidInput(f"expected one signing certificate, got {len(certificates)}")
    return certificates[0]
