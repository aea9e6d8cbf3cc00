"""Plug & Charge authorization (OCPP 2.0.1 / 2.1 C07): the contract certificate's status and the eMAID's.

A station sends the EV's contract chain (``certificate``, PEM, leaf first, root left out) or only
the OCSP data of its certificates (``iso15118CertificateHashData``, leaf first). The decision, in
the order C07.FR.13-17 (with errata 2023-12) gives it:

1. The path leaf … a trusted MO or V2G root (our roots that issue contract certificates, and the
   trust store's MORootCertificate / V2GRootCertificate roots): expired → ``CertificateExpired``
   (idToken ``Expired``); no valid path → ``CertChainError`` (``Invalid``). With hash data only,
   the top entry's issuer must be one of those roots or a CA we know below them.
2. Revocation of every certificate below the anchor: ours from our own database; a foreign one
   from the OCSP responder in its AIA (or the station's ``responderURL``) through a
   :class:`ForeignStatus` the edge supplies -- this module never does HTTP. Revoked →
   ``CertificateRevoked`` (``Invalid``); a status that cannot be had (no responder, no answer,
   ``unknown``) → ``CertChainError`` (``Invalid``): the chain cannot be validated (C07.FR.05 wants
   real-time or cached OCSP).
3. The contract: for a contract certificate of ours, the registry by eMAID. Unknown, expired,
   pending or revoked contracts → ``ContractCancelled`` with the idToken status that says why.
   A foreign eMAID is its mobility operator's to judge; a valid, unrevoked chain → ``Accepted``.
   An idToken that is not the eMAID of the contract certificate → ``ContractCancelled`` (``Invalid``).

``SignatureError`` and ``NoCertificateAvailable`` are not used (errata 2023-12).
"""

from __future__ import annotations

import datetime as dt
import itertools
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from enum import StrEnum

from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.serialization import Encoding
from cryptography.x509.oid import AuthorityInformationAccessOID, NameOID
from sqlalchemy import select

from pki.ca.profiles import ProfileName
from pki.ca.root_uses import RootUse
from pki.ca.trust_store import trusted_roots
from pki.core.clock import utc
from pki.core.errors import InvalidInput
from pki.iso15118.chains import ChainRejected, TrustStore, validate_path
from pki.iso15118.contract_input import normalise_emaid
from pki.iso15118.contract_registry import row_by_emaid
from pki.iso15118.contract_views import derived_status
from pki.iso15118.messages import ResponseCode
from pki.iso15118.trust_anchors import own_trust
from pki.revocation.ocsp_requests import issuer_hashes
from pki.runtime.context import Context
from pki.store.models import CertificateRow

__all__ = [
    "AuthorizationDecision",
    "CertificateStatus",
    "ForeignQuery",
    "ForeignResult",
    "ForeignStatus",
    "HashEntry",
    "IdTokenStatus",
    "OcspAnswer",
    "authorize_chain",
    "authorize_hashes",
]

_HASHES: dict[str, type[hashes.HashAlgorithm]] = {
    "SHA256": hashes.SHA256,
    "SHA384": hashes.SHA384,
    "SHA512": hashes.SHA512,
}
_MAX_CHAIN = 4  # ISO 15118-2 [V2G2-656]: a leaf and at most two sub-CAs below the root; the root may come along


class CertificateStatus(StrEnum):
    """OCPP ``AuthorizeCertificateStatusEnumType`` (2.0.1 and 2.1, identical)."""

    ACCEPTED = "Accepted"
    SIGNATURE_ERROR = "SignatureError"  # not used since errata 2023-12
    CERTIFICATE_EXPIRED = "CertificateExpired"
    CERTIFICATE_REVOKED = "CertificateRevoked"
    NO_CERTIFICATE_AVAILABLE = "NoCertificateAvailable"  # not used since errata 2023-12
    CERT_CHAIN_ERROR = "CertChainError"
    CONTRACT_CANCELLED = "ContractCancelled"


class IdTokenStatus(StrEnum):
    """The subset of OCPP ``AuthorizationStatusEnumType`` this decision gives."""

    ACCEPTED = "Accepted"
    BLOCKED = "Blocked"
    EXPIRED = "Expired"
    INVALID = "Invalid"
    UNKNOWN = "Unknown"


class OcspAnswer(StrEnum):
    GOOD = "good"
    REVOKED = "revoked"
    UNKNOWN = "unknown"
    UNAVAILABLE = "unavailable"  # no responder URL, no answer, or an answer that does not verify


@dataclass(frozen=True, slots=True)
class ForeignQuery:
    """One foreign certificate to ask an OCSP responder about: its RFC 6960 CertID and where to ask.

    ``issuer`` is the issuing CA's certificate when known (it verifies the response, RFC 6960
    §4.2.2.2); with hash data only it may be None, and the response must then bring it.
    """

    hash_algorithm: str  # SHA256 | SHA384 | SHA512
    issuer_name_hash: bytes
    issuer_key_hash: bytes
    serial_number: int
    urls: tuple[str, ...]
    issuer: x509.Certificate | None = None


@dataclass(frozen=True, slots=True)
class ForeignResult:
    answer: OcspAnswer
    reason: str = ""
    next_update: dt.datetime | None = None


ForeignStatus = Callable[[ForeignQuery], ForeignResult]


@dataclass(frozen=True, slots=True)
class HashEntry:
    """One ``OCSPRequestDataType`` of ``iso15118CertificateHashData`` (hex decoded)."""

    hash_algorithm: str
    issuer_name_hash: bytes
    issuer_key_hash: bytes
    serial_number: int
    responder_url: str

    @classmethod
    def from_ocpp(cls, data: dict[str, str]) -> HashEntry:
        """:class:`InvalidInput` for values that are not hex of the algorithm's digest size."""
        algorithm = data.get("hashAlgorithm", "")
        if algorithm not in _HASHES:
            raise InvalidInput(f"hashAlgorithm {algorithm!r} is not SHA256, SHA384 or SHA512")
        try:
            name_hash = bytes.fromhex(data["issuerNameHash"])
            key_hash = bytes.fromhex(data["issuerKeyHash"])
            serial = int(data["serialNumber"], 16)  # OCPP 2.0.1 §2.6: hex, no 0x, no leading zeros
        except (KeyError, ValueError):
            raise InvalidInput("issuerNameHash, issuerKeyHash and serialNumber must be hex") from None
        size = _HASHES[algorithm].digest_size
        if len(name_hash) != size or len(key_hash) != size:
            raise InvalidInput(f"{algorithm} hashes have {size} bytes")
        return cls(algorithm, name_hash, key_hash, serial, str(data.get("responderURL", "")))


@dataclass(frozen=True, slots=True)
class AuthorizationDecision:
    certificate_status: CertificateStatus
    id_token_status: IdTokenStatus
    reason: str
    emaid: str | None = None  # the contract certificate's eMAID, when it was read
    ours: bool = False  # the contract certificate was issued by one of our CAs
    checked: tuple[str, ...] = field(default=())  # how each certificate's status was had ("ours", "ocsp")


def _decision(status: CertificateStatus, token: IdTokenStatus, reason: str, **extra: object) -> AuthorizationDecision:
    return AuthorizationDecision(status, token, reason[:1000], **extra)  # type: ignore[arg-type]


@dataclass(frozen=True, slots=True)
class _Known:
    """The CAs we can name: ours (with their ids) and the foreign trusted roots."""

    trust: TrustStore
    ours: dict[bytes, str]  # DER of our CA certificates → CA id

    def by_hashes(self, algorithm: str, name_hash: bytes, key_hash: bytes) -> x509.Certificate | None:
        for candidate in (*self.trust.intermediates, *self.trust.anchors):
            if issuer_hashes(candidate, _HASHES[algorithm]()) == (name_hash, key_hash):
                return candidate
        return None

    def ca_id(self, certificate: x509.Certificate) -> str | None:
        return self.ours.get(certificate.public_bytes(Encoding.DER))


def _known(ctx: Context, now: dt.datetime) -> _Known:
    with ctx.database.read() as session:
        directory = ctx.ca_directory(session.connection())
        foreign = [*trusted_roots(session, RootUse.MO, now), *trusted_roots(session, RootUse.V2G, now)]
    own = own_trust(directory, ProfileName.CONTRACT)
    anchors = list(own.anchors) + [root for root in foreign if root not in own.anchors]
    ours = {entry.certificate.public_bytes(Encoding.DER): entry.id for entry in directory.cas.values()}
    return _Known(TrustStore(tuple(anchors), own.intermediates), ours)


def _emaid_of(leaf: x509.Certificate) -> str | None:
    names = leaf.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
    if not names:
        return None
    try:
        return normalise_emaid(str(names[0].value))
    except InvalidInput:
        return None


def _ocsp_urls(certificate: x509.Certificate) -> tuple[str, ...]:
    try:
        aia = certificate.extensions.get_extension_for_class(x509.AuthorityInformationAccess).value
    except (x509.ExtensionNotFound, ValueError):
        return ()
    return tuple(
        str(description.access_location.value)
        for description in aia
        if description.access_method == AuthorityInformationAccessOID.OCSP
        and isinstance(description.access_location, x509.UniformResourceIdentifier)
    )


def _our_status(ctx: Context, ca_id: str, serial: int) -> CertificateRow | None:
    with ctx.database.read() as session:
        return session.execute(
            select(CertificateRow).where(
                CertificateRow.issuer_id == ca_id, CertificateRow.serial == format(serial, "X")
            )
        ).scalar_one_or_none()


def _contract_decision(
    ctx: Context, emaid: str | None, id_token: str | None, now: dt.datetime, checked: tuple[str, ...], ours: bool
) -> AuthorizationDecision:
    if emaid is None:
        return _decision(
            CertificateStatus.CERT_CHAIN_ERROR if ours or id_token is None else CertificateStatus.CONTRACT_CANCELLED,
            IdTokenStatus.INVALID,
            "no eMAID: neither the contract certificate's CN nor the idToken is one",
            checked=checked,
            ours=ours,
        )
    if id_token is not None:
        try:
            same = normalise_emaid(id_token) == emaid
        except InvalidInput:
            same = False
        if not same:
            return _decision(
                CertificateStatus.CONTRACT_CANCELLED,
                IdTokenStatus.INVALID,
                f"the idToken is not the contract certificate's eMAID {emaid}",
                emaid=emaid,
                checked=checked,
                ours=ours,
            )
    if not ours:
        # C07.FR.16: a valid chain; whether the foreign eMAID may charge is its operator's call.
        return _decision(
            CertificateStatus.ACCEPTED, IdTokenStatus.ACCEPTED, "valid contract chain", emaid=emaid, checked=checked
        )
    with ctx.database.read() as session:
        row = row_by_emaid(session, emaid)
        status = derived_status(row, now) if row is not None else None
    token = {
        None: IdTokenStatus.UNKNOWN,
        "revoked": IdTokenStatus.BLOCKED,
        "expired": IdTokenStatus.EXPIRED,
        "pending": IdTokenStatus.INVALID,
    }
    if status != "active":
        why = "is not registered" if status is None else f"is {status}"
        # C07.FR.14: chain valid, eMAID unknown / blocked / expired.
        return _decision(
            CertificateStatus.CONTRACT_CANCELLED,
            token[status],
            f"contract {emaid} {why}",
            emaid=emaid,
            checked=checked,
            ours=True,
        )
    return _decision(
        CertificateStatus.ACCEPTED,
        IdTokenStatus.ACCEPTED,
        f"contract {emaid} is active",
        emaid=emaid,
        checked=checked,
        ours=True,
    )


def _revocation(
    ctx: Context,
    known: _Known,
    certificate_serial: int,
    issuer: x509.Certificate | None,
    query: ForeignQuery,
    foreign: ForeignStatus,
    what: str,
) -> tuple[AuthorizationDecision | None, str]:
    """None when the certificate is good (and how that was learnt), else the decision it leads to."""
    ca_id = known.ca_id(issuer) if issuer is not None else None
    if ca_id is not None:
        row = _our_status(ctx, ca_id, certificate_serial)
        if row is None:
            return _decision(
                CertificateStatus.CERT_CHAIN_ERROR, IdTokenStatus.INVALID, f"{what} is not a certificate {ca_id} issued"
            ), "ours"
        if row.status != "valid":  # revoked or on hold (RFC 5280 certificateHold)
            return _decision(
                CertificateStatus.CERTIFICATE_REVOKED, IdTokenStatus.INVALID, f"{what} is {row.status}"
            ), "ours"
        return None, "ours"
    result = foreign(query)
    if result.answer == OcspAnswer.GOOD:
        return None, "ocsp"
    if result.answer == OcspAnswer.REVOKED:
        return _decision(
            CertificateStatus.CERTIFICATE_REVOKED, IdTokenStatus.INVALID, f"{what} is revoked (OCSP)"
        ), "ocsp"
    return _decision(
        CertificateStatus.CERT_CHAIN_ERROR,
        IdTokenStatus.INVALID,
        f"{what}: no revocation status ({result.answer.value}: {result.reason})",
    ), "ocsp"


def authorize_chain(
    ctx: Context, certificate_pem: str, *, id_token: str | None, foreign: ForeignStatus
) -> AuthorizationDecision:
    """C07 with the contract chain (PEM, leaf first); never raises for the chain's content."""
    now = ctx.clock.now()
    try:
        presented = x509.load_pem_x509_certificates(certificate_pem.encode())
    except ValueError:
        return _decision(CertificateStatus.CERT_CHAIN_ERROR, IdTokenStatus.INVALID, "certificate is no PEM chain")
    if not presented or len(presented) > _MAX_CHAIN:
        return _decision(
            CertificateStatus.CERT_CHAIN_ERROR,
            IdTokenStatus.INVALID,
            f"a contract chain has 1-{_MAX_CHAIN} certificates, not {len(presented)}",
        )
    leaf, rest = presented[0], presented[1:]
    known = _known(ctx, now)
    try:
        path = validate_path(leaf, rest, known.trust, now, what="the contract certificate")
    except ChainRejected as error:
        if error.response_code == ResponseCode.FAILED_CERTIFICATE_EXPIRED:
            return _decision(CertificateStatus.CERTIFICATE_EXPIRED, IdTokenStatus.EXPIRED, error.message)
        return _decision(CertificateStatus.CERT_CHAIN_ERROR, IdTokenStatus.INVALID, error.message)
    checked: list[str] = []
    for certificate, issuer in itertools.pairwise(path):
        what = "the contract certificate" if certificate is leaf else f"sub-CA {certificate.subject.rfc4514_string()!r}"
        name_hash, key_hash = issuer_hashes(issuer, hashes.SHA256())
        query = ForeignQuery("SHA256", name_hash, key_hash, certificate.serial_number, _ocsp_urls(certificate), issuer)
        failed, how = _revocation(ctx, known, certificate.serial_number, issuer, query, foreign, what)
        checked.append(how)
        if failed is not None:
            return failed
    ours = known.ca_id(path[1]) is not None
    return _contract_decision(ctx, _emaid_of(leaf), id_token, now, tuple(checked), ours)


def authorize_hashes(
    ctx: Context, entries: Sequence[HashEntry], *, id_token: str | None, foreign: ForeignStatus
) -> AuthorizationDecision:
    """C07 with ``iso15118CertificateHashData`` only (leaf first): looked up by hash, revocation by OCSP."""
    if not 1 <= len(entries) <= _MAX_CHAIN:
        raise InvalidInput(f"iso15118CertificateHashData has 1-{_MAX_CHAIN} entries")
    now = ctx.clock.now()
    known = _known(ctx, now)
    top = entries[-1]
    top_issuer = known.by_hashes(top.hash_algorithm, top.issuer_name_hash, top.issuer_key_hash)
    if top_issuer is None:
        return _decision(
            CertificateStatus.CERT_CHAIN_ERROR,
            IdTokenStatus.INVALID,
            "the chain's top certificate was not issued by a trusted MO or V2G root or a CA of ours",
        )
    checked: list[str] = []
    leaf_row: CertificateRow | None = None
    for index, entry in enumerate(entries):
        issuer = known.by_hashes(entry.hash_algorithm, entry.issuer_name_hash, entry.issuer_key_hash)
        what = "the contract certificate" if index == 0 else f"sub-CA {entry.serial_number:X}"
        query = ForeignQuery(
            entry.hash_algorithm,
            entry.issuer_name_hash,
            entry.issuer_key_hash,
            entry.serial_number,
            (entry.responder_url,) if entry.responder_url else (),
            issuer,
        )
        failed, how = _revocation(ctx, known, entry.serial_number, issuer, query, foreign, what)
        checked.append(how)
        if failed is not None:
            return failed
        ca_id = known.ca_id(issuer) if issuer is not None else None
        if index == 0 and ca_id is not None:
            leaf_row = _our_status(ctx, ca_id, entry.serial_number)
    if leaf_row is None:
        # A foreign contract: no certificate to read its eMAID or validity from; OCSP said good.
        return _contract_decision(ctx, _token_emaid(id_token), None, now, tuple(checked), False)
    if leaf_row.profile != ProfileName.CONTRACT.value:
        return _decision(
            CertificateStatus.CERT_CHAIN_ERROR,
            IdTokenStatus.INVALID,
            f"certificate {leaf_row.serial} is a {leaf_row.profile} certificate, not a contract",
        )
    if utc(leaf_row.not_after) <= now:
        return _decision(
            CertificateStatus.CERTIFICATE_EXPIRED,
            IdTokenStatus.EXPIRED,
            f"the contract certificate expired on {utc(leaf_row.not_after).isoformat()}",
        )
    return _contract_decision(ctx, leaf_row.identity, id_token, now, tuple(checked), True)


def _token_emaid(id_token: str | None) -> str | None:
    if id_token is None:
        return None
    try:
        return normalise_emaid(id_token)
    except InvalidInput:
        return None
