"""The car's side of contract provisioning: the OCPP fields read, the ISO 15118-2 request verified.

Steps 1 and 2 of :mod:`pki.iso15118.provisioning`:

1. base64 → EXI → :class:`~pki.iso15118.messages.V2GMessage`; the body must be the request the
   action names (Install ↔ CertificateInstallationReq, Update ↔ CertificateUpdateReq);
2. the car's signature over its request, made with the OEM provisioning key (Install) or the
   current contract key (Update), and that certificate's path to a trusted root plus its
   revocation status where we issued it (:mod:`pki.iso15118.chains`).

A request that fails raises one of the two outcomes provisioning answers with: :class:`Refused`
(understood: the car gets an EXI response with a ``FAILED_*`` ResponseCode) or
:class:`Unanswerable` (no EXI response is possible: OCPP ``Failed``).
:func:`~pki.iso15118.provisioning.provision` turns both into the OCPP answer.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import itertools
from enum import StrEnum

from cryptography import x509
from sqlalchemy import Connection, bindparam, select, tuple_

from pki.ca.authority import serial_hex
from pki.ca.profiles import ProfileName
from pki.core.errors import EvpkiError
from pki.iso15118.chains import ChainRejected, TrustStore, readable_certificate, validate_path
from pki.iso15118.exi import ExiError, decode_message
from pki.iso15118.messages import (
    MSG_DEF_NAMESPACE,
    CertificateInstallationReq,
    CertificateUpdateReq,
    ResponseCode,
    V2GMessage,
)
from pki.iso15118.signing import verify_elements
from pki.iso15118.trust_anchors import oem_trust, own_trust
from pki.runtime.context import CaDirectory, Context
from pki.store.models import CertificateRow

__all__ = [
    "EXI_REQUEST_LIMITS",
    "EXI_RESPONSE_LIMITS",
    "ISO15118_20_NAMESPACE",
    "Action",
    "Refused",
    "Unanswerable",
    "check_revocation",
    "decode_request",
    "expected_body",
    "is_iso15118_20",
    "parse_action",
    "request_bytes",
    "response_limit",
    "verify_installation",
    "verify_update",
]

ISO15118_20_NAMESPACE = "urn:iso:std:iso:15118:-20:CommonMessages"
# Names some tools send for ISO 15118-2 (reference/iso15118.md §5: be lenient, then sniff the EXI).
_ISO2_ALIASES = frozenset({MSG_DEF_NAMESPACE.lower(), "15118-2", "iso15118-2", "iso-2", "iso2"})
# OCPP field limits in characters: 2.0.1 text §1.16 (5,600 both ways), 2.1 schema (11,000 / 17,000);
# 1.6 carries the 2.0.1 payload inside DataTransfer (OCA application note).
EXI_REQUEST_LIMITS = {"1.6": 5600, "2.0.1": 5600, "2.1": 11000}
EXI_RESPONSE_LIMITS = {"1.6": 5600, "2.0.1": 5600, "2.1": 17000}


class Action(StrEnum):
    INSTALL = "Install"
    UPDATE = "Update"


class Refused(Exception):
    """The request is understood but must be answered with a FAILED_* ResponseCode."""

    def __init__(self, response_code: ResponseCode, reason: str, reason_code: str) -> None:
        super().__init__(reason)
        self.response_code = response_code
        self.reason = reason
        self.reason_code = reason_code


class Unanswerable(Exception):
    """No EXI response is possible: OCPP ``Failed`` with ``exiResponse = ""``."""

    def __init__(self, reason: str, reason_code: str) -> None:
        super().__init__(reason)
        self.reason = reason
        self.reason_code = reason_code


def response_limit(ocpp_version: str, override: int | None) -> int:
    """How many characters the ``exiResponse`` may have: ``override``, or the OCPP version's field limit."""
    if ocpp_version not in EXI_RESPONSE_LIMITS:
        raise Unanswerable(
            f"unknown OCPP version {ocpp_version!r}; expected one of {', '.join(EXI_RESPONSE_LIMITS)}",
            "InvalidVersion",
        )
    if override is not None:
        if override < 1:
            raise Unanswerable("the exiResponse limit must be positive", "InvalidLimit")
        return override
    return EXI_RESPONSE_LIMITS[ocpp_version]


def parse_action(value: str) -> Action:
    """The OCPP ``action`` field: Install or Update."""
    try:
        return Action(value)
    except ValueError:
        raise Unanswerable(f"action must be Install or Update, not {value[:40]!r}", "InvalidAction") from None


def is_iso15118_20(schema_version: str) -> bool:
    """Whether ``iso15118SchemaVersion`` names ISO 15118-20 (its namespace, or any name with "-20")."""
    version = schema_version.strip().lower()
    return version == ISO15118_20_NAMESPACE.lower() or "-20" in version


def request_bytes(exi_request: str, ocpp_version: str) -> bytes:
    """The EXI bytes of the OCPP ``exiRequest`` field: within the version's limit, base64."""
    limit = EXI_REQUEST_LIMITS[ocpp_version]
    if len(exi_request) > limit:
        raise Unanswerable(
            f"exiRequest has {len(exi_request)} characters; OCPP {ocpp_version} allows {limit}", "TooLarge"
        )
    try:
        return base64.b64decode(exi_request, validate=True)
    except (binascii.Error, ValueError):
        raise Unanswerable("exiRequest is not base64", "InvalidExi") from None


def decode_request(exi_request: str, schema_version: str, ocpp_version: str) -> V2GMessage:
    """The ISO 15118-2 message in the OCPP ``exiRequest`` field (base64 EXI)."""
    data = request_bytes(exi_request, ocpp_version)
    version = schema_version.strip().lower()
    # An unknown name is accepted when the stream is an ISO 15118-2 document (they all start 80 98).
    if version not in _ISO2_ALIASES and not data.startswith(b"\x80\x98"):
        raise Unanswerable(f"unsupported iso15118SchemaVersion {schema_version[:60]!r}", "UnsupportedSchema")
    try:
        return decode_message(data)
    except ExiError as exc:
        raise Unanswerable(f"exiRequest is not a usable ISO 15118-2 message: {exc.message}", "InvalidExi") from None


def expected_body(message: V2GMessage, action: Action) -> CertificateInstallationReq | CertificateUpdateReq:
    """The message's body, when it is the request ``action`` names."""
    body = message.body
    expected = CertificateInstallationReq if action is Action.INSTALL else CertificateUpdateReq
    if not isinstance(body, expected):
        raise Unanswerable(
            f"action {action.value} needs a {expected.__name__}, but the EXI carries a {type(body).__name__}",
            "ActionMismatch",
        )
    return body


def verify_installation(
    ctx: Context,
    connection: Connection,
    directory: CaDirectory,
    message: V2GMessage,
    request: CertificateInstallationReq,
    now: dt.datetime,
) -> x509.Certificate:
    """The OEM provisioning certificate, once it signed the request and chains to a trusted OEM root."""
    oem = _parse_certificate(request.oem_provisioning_cert, "OEMProvisioningCert")
    _check_signature(message, request, oem, "the vehicle's OEM provisioning signature")
    trust = oem_trust(ctx, directory, connection, now, pcid=_subject_cn(oem))  # PCP: the vehicle's sub-CAs
    path = _validated(oem, (), trust, now, "the OEM provisioning certificate")
    _check_revocation(connection, directory, path, "the OEM provisioning certificate")
    return oem


def verify_update(
    ctx: Context,
    connection: Connection,
    directory: CaDirectory,
    message: V2GMessage,
    request: CertificateUpdateReq,
    now: dt.datetime,
) -> x509.Certificate:
    """The contract certificate being replaced, once it signed the request and chains to our MO CA."""
    chain = request.contract_signature_cert_chain
    leaf = _parse_certificate(chain.certificate, "ContractSignatureCertChain/Certificate")
    subs = tuple(
        _parse_certificate(der, "ContractSignatureCertChain/SubCertificates") for der in chain.sub_certificates
    )
    _check_signature(message, request, leaf, "the vehicle's contract signature")
    path = _validated(leaf, subs, own_trust(directory, ProfileName.CONTRACT), now, "the contract certificate")
    _check_revocation(connection, directory, path, "the contract certificate")
    return leaf


def _parse_certificate(der: bytes, what: str) -> x509.Certificate:
    certificate = readable_certificate(der)
    if certificate is None:
        raise Refused(ResponseCode.FAILED_CERT_CHAIN_ERROR, f"{what} is not a DER certificate", "BadCertificate")
    return certificate


def _check_signature(
    message: V2GMessage,
    request: CertificateInstallationReq | CertificateUpdateReq,
    certificate: x509.Certificate,
    what: str,
) -> None:
    try:
        verify_elements(message.header.signature, (request,), certificate.public_key(), what=what)
    except EvpkiError as exc:  # VerificationFailed, or an ExiError re-encoding a hostile element
        raise Refused(ResponseCode.FAILED_SIGNATURE_ERROR, exc.message, "SignatureError") from None


def _validated(
    leaf: x509.Certificate,
    presented: tuple[x509.Certificate, ...],
    trust: TrustStore,
    now: dt.datetime,
    what: str,
) -> list[x509.Certificate]:
    try:
        return validate_path(leaf, presented, trust, now, what=what)
    except ChainRejected as exc:
        reason_code = "Expired" if exc.response_code is ResponseCode.FAILED_CERTIFICATE_EXPIRED else "CertChainError"
        raise Refused(exc.response_code, exc.message, reason_code) from None


def _check_revocation(connection: Connection, directory: CaDirectory, path: list[x509.Certificate], what: str) -> None:
    """Every certificate of the path that one of our CAs issued must be on record and not revoked."""
    ours: list[tuple[x509.Certificate, str, str]] = []  # (certificate, its issuer's id, serial)
    for certificate, issuer in itertools.pairwise(path):
        issuer_id = _our_ca(directory, issuer)
        if issuer_id is not None:  # a foreign CA's certificates' status is the foreign CA's business
            ours.append((certificate, issuer_id, serial_hex(certificate.serial_number)))
    if not ours:
        return
    # One query for the whole path (a car's chain is up to four certificates).
    rows = connection.execute(_PATH_STATUSES, {"keys": [(i, s) for _, i, s in ours]}).all()
    found = {(row.issuer_id, row.serial): row for row in rows}
    for certificate, issuer_id, serial in ours:
        row = found.get((issuer_id, serial))
        name = certificate.subject.rfc4514_string()
        if row is None:
            raise Refused(
                ResponseCode.FAILED_CERT_CHAIN_ERROR,
                f"{what}: {issuer_id} has no record of {name!r} (serial {serial})",
                "UnknownCertificate",
            )
        if row.status in ("revoked", "on-hold"):
            raise Refused(
                ResponseCode.FAILED_CERTIFICATE_REVOKED,
                f"{what}: {name!r} is {row.status} ({row.revocation_reason})",
                "Revoked",
            )


_CERTIFICATE = CertificateRow.__table__  # type: ignore[attr-defined]
# Built once (every installation request checks its path): the statuses of (issuer, serial) pairs.
_PATH_STATUSES = select(
    _CERTIFICATE.c.issuer_id, _CERTIFICATE.c.serial, _CERTIFICATE.c.status, _CERTIFICATE.c.revocation_reason
).where(tuple_(_CERTIFICATE.c.issuer_id, _CERTIFICATE.c.serial).in_(bindparam("keys", expanding=True)))


def _our_ca(directory: CaDirectory, certificate: x509.Certificate) -> str | None:
    """The id of our CA whose certificate ``certificate`` is, or None.

    The path's issuers are mostly the directory's own objects (the trust store is built from them):
    an identity match spares comparing DER against every CA.
    """
    for entry in directory.cas.values():
        if entry.certificate is certificate:
            return entry.id
    return next((entry.id for entry in directory.cas.values() if entry.certificate == certificate), None)


check_revocation = _check_revocation  # the -20 installation checks its OEM chain the same way


def _subject_cn(certificate: x509.Certificate) -> str | None:
    names = certificate.subject.get_attributes_for_oid(x509.NameOID.COMMON_NAME)
    return str(names[0].value) if names else None
