"""Firmware signing for OCPP secure firmware update (2.0.1/2.1 L01 UpdateFirmware, 1.6 SignedUpdateFirmware).

This module owns:

* the SHA-256 of a firmware file read as a stream of chunks -- the file is never held in memory;
* the signature over that digest with the key of the newest valid managed ``firmware-signer``
  certificate, and the checks that signer passes first: valid now, neither revoked nor on hold,
  issued directly by a *manufacturer root* (OCPP L01: no intermediates), and that root usable;
* the verification a CSMS should run before it sends an update (OCPP 2.0.1 A00.FR.707): the signing
  certificate is one a manufacturer root issued, has the firmware-signer properties, is valid and
  not revoked, its root is usable, and the signature matches the file;
* the ready-to-send ``UpdateFirmwareRequest`` (2.0.1/2.1) and ``SignedUpdateFirmware.req`` (1.6)
  payloads, within the field limits of the OCPP JSON schemas.

The scheme is SHA-256 over the whole file (OCPP 2.0.1 L01.FR.04), then RSASSA-PSS (MGF1-SHA256,
salt = 32 octets) for an RSA signer or ECDSA (DER) for an EC signer; ``openssl dgst -sha256
-verify`` checks both. L01.FR.04 names RSA-PSS or "ECSchnorr"; ECDSA is what stations implement
in practice, so agree the scheme with each manufacturer (reference/ocpp.md §4).

The manufacturer roots are ``mf-root`` and the generations ``evpki ca rollover mf-root`` made from
it (``mf-root-2``, ...: the roots of its PKI). A rollover gives the new root its own firmware
signer; the old signer keeps verifying while the old root is valid and not revoked, because
stations in the field hold the old ManufacturerRootCertificate until root reconciliation (OCPP
M05) gives them the new one.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import hashlib
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any, Literal, cast

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.hazmat.primitives.asymmetric.types import CertificatePublicKeyTypes
from cryptography.hazmat.primitives.asymmetric.utils import Prehashed
from sqlalchemy import select
from sqlalchemy.orm import Session

from pki.ca.authority import fingerprint, serial_hex
from pki.ca.profiles import ProfileName
from pki.core.clock import utc
from pki.core.errors import IntegrityError, InvalidInput, NotFound, PolicyViolation, VerificationFailed
from pki.keys.base import Signer
from pki.operations import audit
from pki.runtime.context import CaDirectory, Context
from pki.runtime.views import pem
from pki.store import repository
from pki.store.models import CertificateAuthorityRow, CertificateRow

__all__ = [
    "FIRMWARE_SIGNER_LABEL",
    "LOCATION_MAX_CHARS",
    "MANUFACTURER_ROOT",
    "OCPP_VERSIONS",
    "SIGNATURE_MAX_CHARS",
    "SIGNING_CERTIFICATE_MAX_CHARS",
    "FirmwareSignature",
    "FirmwareVerification",
    "OcppVersion",
    "check_location",
    "sign_firmware",
    "verify_firmware",
]

MANUFACTURER_ROOT = "mf-root"
FIRMWARE_SIGNER_LABEL = "firmware-signer"

OcppVersion = Literal["1.6", "2.0.1", "2.1"]
OCPP_VERSIONS: tuple[OcppVersion, ...] = ("1.6", "2.0.1", "2.1")
# FirmwareType limits in the schemas of every version (reference/ocpp.md §2.11).
LOCATION_MAX_CHARS: dict[OcppVersion, int] = {"1.6": 512, "2.0.1": 512, "2.1": 2000}
SIGNING_CERTIFICATE_MAX_CHARS = 5500
SIGNATURE_MAX_CHARS = 800
# OCPP-J integers are 32-bit signed; a larger requestId is refused by schema-checking peers in practice.
_INT32_MAX = 2**31 - 1

_RSA_PSS_SHA256 = "rsassa-pss-sha256"
_ECDSA_SHA256 = "ecdsa-sha256"


# -- results ---------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class FirmwareSignature:
    """A signed firmware file: what an OCPP UpdateFirmware request carries, and the payloads themselves.

    ``signature`` is Base64 (the wire form of ``firmware.signature``); ``certificate_pem`` is the
    signing certificate alone (``firmware.signingCertificate``). ``location`` and ``retrieve_at``
    are the defaults of the payload methods.
    """

    sha256: str
    size: int
    signature: str
    algorithm: str
    certificate_pem: str = field(repr=False)
    signer_serial: str
    location: str | None
    retrieve_at: dt.datetime | None = None
    signer_ca: str = MANUFACTURER_ROOT  # the manufacturer root (generation) that issued the signer

    def update_firmware_201(
        self,
        request_id: int,
        retrieve_date_time: dt.datetime | None = None,
        *,
        install_date_time: dt.datetime | None = None,
        retries: int | None = None,
        retry_interval: int | None = None,
        location: str | None = None,
        ocpp_version: Literal["2.0.1", "2.1"] = "2.0.1",
    ) -> dict[str, Any]:
        """The ``UpdateFirmwareRequest`` payload of OCPP 2.0.1 (or 2.1), secure update use case L01."""
        if ocpp_version not in ("2.0.1", "2.1"):
            raise InvalidInput(
                f"UpdateFirmware is OCPP 2.0.1 or 2.1, not {ocpp_version!r}; 1.6 has SignedUpdateFirmware"
            )
        return self._request(
            ocpp_version, request_id, retrieve_date_time, install_date_time, retries, retry_interval, location
        )

    def signed_update_firmware_16(
        self,
        request_id: int,
        retrieve_date_time: dt.datetime | None = None,
        *,
        install_date_time: dt.datetime | None = None,
        retries: int | None = None,
        retry_interval: int | None = None,
        location: str | None = None,
    ) -> dict[str, Any]:
        """The ``SignedUpdateFirmware.req`` payload of the OCPP 1.6 security whitepaper (L01)."""
        return self._request(
            "1.6", request_id, retrieve_date_time, install_date_time, retries, retry_interval, location
        )

    def payload(
        self,
        ocpp_version: OcppVersion,
        request_id: int,
        retrieve_date_time: dt.datetime | None = None,
        *,
        install_date_time: dt.datetime | None = None,
        retries: int | None = None,
        retry_interval: int | None = None,
        location: str | None = None,
    ) -> dict[str, Any]:
        """The request payload of ``ocpp_version``: SignedUpdateFirmware for 1.6, UpdateFirmware for 2.x."""
        return self._request(
            _version(ocpp_version), request_id, retrieve_date_time, install_date_time, retries, retry_interval, location
        )

    def _request(
        self,
        version: OcppVersion,
        request_id: int,
        retrieve_date_time: dt.datetime | None,
        install_date_time: dt.datetime | None,
        retries: int | None,
        retry_interval: int | None,
        location: str | None,
    ) -> dict[str, Any]:
        retrieve = retrieve_date_time if retrieve_date_time is not None else self.retrieve_at
        if retrieve is None:
            raise InvalidInput("retrieveDateTime is needed: say when the station should download the firmware")
        firmware: dict[str, Any] = {
            "location": check_location(location if location is not None else self.location, version),
            "retrieveDateTime": _date_time(retrieve, "retrieveDateTime"),
        }
        if install_date_time is not None:
            firmware["installDateTime"] = _date_time(install_date_time, "installDateTime")
        # OCPP 2.0.1 L01.FR.11: the CSMS SHALL send the signing certificate; 1.6 requires both fields.
        firmware["signingCertificate"] = _within(
            self.certificate_pem, SIGNING_CERTIFICATE_MAX_CHARS, "signingCertificate"
        )
        firmware["signature"] = _within(self.signature, SIGNATURE_MAX_CHARS, "signature")
        payload: dict[str, Any] = {}
        if retries is not None:
            payload["retries"] = _integer(retries, "retries", minimum=0)
        if retry_interval is not None:
            payload["retryInterval"] = _integer(retry_interval, "retryInterval", minimum=0)
        # OCPP 2.0.1 L01.FR.10: the station reports every status of this update under this requestId.
        payload["requestId"] = _integer(request_id, "requestId", minimum=-_INT32_MAX - 1)
        payload["firmware"] = firmware
        return payload

    def to_json(self) -> dict[str, Any]:
        """snake_case fields for the edges (REST bodies, CLI ``--json``)."""
        return {
            "sha256": self.sha256,
            "size": self.size,
            "algorithm": self.algorithm,
            "signature": self.signature,
            "certificate_pem": self.certificate_pem,
            "signer_serial": self.signer_serial,
            "location": self.location,
            "retrieve_at": utc(self.retrieve_at).isoformat() if self.retrieve_at is not None else None,
        }


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


# -- signing ---------------------------------------------------------------------------------


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
        _integer(request_id, "requestId", minimum=-_INT32_MAX - 1)
    if retrieve_at is not None:
        _date_time(retrieve_at, "retrieve_at")
    # Checked before reading what may be gigabytes; the write transaction below decides.
    with ctx.database.read() as session:
        row, _, _ = _usable_signer(ctx, session, signer_ca)
        key_id = _key_id(row)
    signer = ctx.keys.load(key_id)  # may decrypt the key: done outside the write transaction
    digest, size = _digest(chunks, max_bytes)
    with ctx.database.write() as session:
        now = ctx.clock.now()
        row, certificate, algorithm = _usable_signer(ctx, session, signer_ca)
        if _key_id(row) != signer.key_id:  # the signer was replaced while the file was read
            signer = ctx.keys.load(_key_id(row))
        _check_key_matches(signer, certificate, row)
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


def _manufacturer_roots(session: Session) -> list[CertificateAuthorityRow]:
    """``mf-root`` and every generation rolled over from it (the roots of its PKI), newest first."""
    first = repository.get_ca(session, MANUFACTURER_ROOT)
    roots = [row for row in repository.list_cas(session) if row.parent_id is None and row.pki == first.pki]
    return sorted(roots, key=lambda row: (utc(row.created_at), row.id), reverse=True)


def _usable_signer(
    ctx: Context, session: Session, signer_ca: str | None = None
) -> tuple[CertificateRow, x509.Certificate, str]:
    """The newest valid firmware-signer row (of root ``signer_ca`` if given), its certificate and algorithm.

    Valid: stored as valid, within its validity, issued by a manufacturer root that is itself
    usable. When none is, the newest signer is checked, so the refusal names its actual fault.
    """
    roots = {row.id for row in _manufacturer_roots(session)}
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
        raise PolicyViolation("firmware.signer-revoked", f"{what} is revoked ({row.revocation_reason}){_since(row)}")
    if row.status == "on-hold":
        raise PolicyViolation(
            "firmware.signer-on-hold", f"{what} is on hold{_since(row)}; release the hold before signing"
        )
    if utc(row.not_before) > now:
        raise PolicyViolation(
            "firmware.signer-not-yet-valid", f"{what} is not valid before {utc(row.not_before).isoformat()}"
        )
    if utc(row.not_after) <= now:
        raise PolicyViolation("firmware.signer-expired", f"{what} expired on {utc(row.not_after).isoformat()}")
    certificate = x509.load_der_x509_certificate(row.der)
    algorithm = _algorithm(certificate.public_key())
    if algorithm is None:
        raise PolicyViolation(
            "firmware.signer-algorithm",
            f"{what} has a {type(certificate.public_key()).__name__}: firmware is signed as a streamed SHA-256 "
            "digest (OCPP L01.FR.04), which EdDSA cannot sign; give [pki.mf] an ec-* or rsa-* algorithm",
        )
    ctx.check_chain_usable(directory, row.issuer_id)
    return row, certificate, algorithm


def _key_id(row: CertificateRow) -> str:
    if row.key_id is None:
        raise PolicyViolation(
            "firmware.signer-key", f"evpki does not hold the key of the firmware-signer certificate {row.serial}"
        )
    return row.key_id


def _check_key_matches(signer: Signer, certificate: x509.Certificate, row: CertificateRow) -> None:
    if signer.public_key() != certificate.public_key():
        raise IntegrityError(f"key {signer.key_id!r} does not belong to the firmware-signer certificate {row.serial}")


def _since(row: CertificateRow) -> str:
    return f" since {utc(row.revoked_at).isoformat()}" if row.revoked_at is not None else ""


# -- verification ----------------------------------------------------------------------------


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
    digest, size = _digest(chunks, max_bytes)
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
        algorithm=cast(str, _algorithm(public_key)),
        signer_subject=certificate.subject.rfc4514_string(),
        signer_serial=serial_hex(certificate.serial_number),
        not_after=certificate.not_valid_after_utc,
    )


def _check_signing_certificate(ctx: Context, certificate: x509.Certificate) -> None:
    serial = serial_hex(certificate.serial_number)
    what = f"signing certificate {serial} ({certificate.subject.rfc4514_string()})"
    if _algorithm(certificate.public_key()) is None:
        raise VerificationFailed(f"{what} has a {type(certificate.public_key()).__name__}, not an RSA or EC key")
    with ctx.database.read() as session:
        roots = _manufacturer_roots(session)
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
            raise VerificationFailed(f"{what} is revoked ({row.revocation_reason}){_since(row)}")
        if row.status == "on-hold":
            raise VerificationFailed(f"{what} is on hold (certificateHold){_since(row)}")
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


# -- shared helpers --------------------------------------------------------------------------


def check_location(location: str | None, ocpp_version: OcppVersion) -> str:
    """``location`` if it fits ``firmware.location`` of ``ocpp_version``; else :class:`InvalidInput`."""
    limit = LOCATION_MAX_CHARS[_version(ocpp_version)]
    if location is None or not location.strip():
        raise InvalidInput(
            "a firmware location is needed for an OCPP payload: the URI the station downloads the file from"
        )
    if len(location) > limit:
        raise InvalidInput(
            f"the firmware location has {len(location)} characters; OCPP {ocpp_version} allows at most {limit}"
        )
    return location


def _version(value: str) -> OcppVersion:
    if value not in OCPP_VERSIONS:
        raise InvalidInput(f"unknown OCPP version {value!r}; use one of {', '.join(OCPP_VERSIONS)}")
    return cast(OcppVersion, value)


def _algorithm(public_key: CertificatePublicKeyTypes) -> str | None:
    if isinstance(public_key, rsa.RSAPublicKey):
        return _RSA_PSS_SHA256
    if isinstance(public_key, ec.EllipticCurvePublicKey):
        return _ECDSA_SHA256
    return None


def _digest(chunks: Iterable[bytes], max_bytes: int) -> tuple[bytes, int]:
    """SHA-256 and size of the concatenated chunks; stops reading as soon as ``max_bytes`` is passed."""
    if isinstance(chunks, bytes | bytearray | memoryview | str):
        raise TypeError("pass the firmware as an iterable of byte chunks (e.g. [data]), not one bytes or str object")
    if max_bytes <= 0:
        raise InvalidInput(f"the firmware size limit must be positive, not {max_bytes}")
    hasher = hashlib.sha256()
    size = 0
    for chunk in chunks:
        if not isinstance(chunk, bytes | bytearray | memoryview):
            raise TypeError(f"firmware chunks are bytes, not {type(chunk).__name__}")
        size += memoryview(chunk).nbytes
        if size > max_bytes:
            raise InvalidInput(f"the firmware file is larger than the limit of {max_bytes} bytes")
        hasher.update(chunk)
    if size == 0:
        raise InvalidInput("the firmware file is empty")
    return hasher.digest(), size


def _date_time(value: dt.datetime, name: str) -> str:
    """RFC 3339 UTC with a ``Z``, as the schemas' ``date-time`` format wants it."""
    if not isinstance(value, dt.datetime):
        raise TypeError(f"{name} is a datetime, not {type(value).__name__}")
    if value.tzinfo is None or value.utcoffset() is None:
        raise InvalidInput(f"{name} needs a time zone (OCPP date-time values are unambiguous instants)")
    text = utc(value).isoformat(timespec="milliseconds" if value.microsecond else "seconds")
    return text.replace("+00:00", "Z")


def _within(value: str, limit: int, name: str) -> str:
    if len(value) > limit:
        raise InvalidInput(f"firmware.{name} has {len(value)} characters; OCPP allows at most {limit}")
    return value


def _integer(value: int, name: str, *, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{name} is an int, not {type(value).__name__}")
    if not minimum <= value <= _INT32_MAX:
        raise InvalidInput(f"{name} must be between {minimum} and {_INT32_MAX}, not {value}")
    return value
