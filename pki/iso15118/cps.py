"""The CPS side of contract provisioning: which CPS chain answers a car, and the response it signs.

The car lists the V2G roots it trusts; :func:`find_cps_chain` picks the newest usable CPS leaf
whose chain ends in one of them. :func:`signed_response` builds the CertificateInstallationRes /
CertificateUpdateRes around a freshly signed contract certificate -- the contract key encrypted
for the car, the four Id-carrying elements signed by the CPS leaf (ISO 15118-2 [V2G2-771]), the
request's SessionID -- and refuses one that would not fit the OCPP field. :func:`cps_signed_fields`
is that signing step alone, shared with the OPCP CPS (:mod:`pki.opcp.cps`, :mod:`pki.opcp.generate`).
:func:`failure_response` is the unsigned answer that carries only a ``FAILED_*`` ResponseCode.
"""

from __future__ import annotations

import base64
import datetime as dt
import functools
from dataclasses import dataclass
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import Encoding
from cryptography.x509.oid import NameOID
from sqlalchemy import bindparam, select

from pki.ca.profiles import ProfileName
from pki.core import parsed
from pki.core.clock import utc
from pki.core.errors import EvpkiError, PolicyViolation
from pki.iso15118 import contract_input
from pki.iso15118.exi import encode_message
from pki.iso15118.keywrap import encrypt_contract_key
from pki.iso15118.messages import (
    EMAID,
    CertificateChain,
    CertificateInstallationReq,
    CertificateInstallationRes,
    CertificateUpdateReq,
    CertificateUpdateRes,
    ContractSignatureEncryptedPrivateKey,
    DHPublicKey,
    Header,
    ResponseCode,
    RootCertificateId,
    Signature,
    V2GMessage,
)
from pki.iso15118.signing import sign_elements
from pki.runtime.context import CaDirectory, Context
from pki.store import repository
from pki.store.models import CertificateRow

__all__ = [
    "CpsChain",
    "ResponseTooLarge",
    "SignedContractFields",
    "common_name",
    "cps_signed_fields",
    "der",
    "failure_response",
    "find_cps_chain",
    "signed_response",
]

_RESPONSE_IDS = ("id1", "id2", "id3", "id4")
# Placeholders for the elements a FAILED_* response must still carry (every element of the Res is
# mandatory in V2G_CI_MsgBody.xsd); the car reads the ResponseCode and stops.
_PLACEHOLDER_EMAID = "ZZ00000000000Z"


class ResponseTooLarge(Exception):
    """Raised while the certificate is not yet stored, so the issuance is abandoned."""


@dataclass(frozen=True, slots=True)
class CpsChain:
    leaf: x509.Certificate
    sub_certificates: tuple[bytes, ...]
    key_id: str


def find_cps_chain(
    ctx: Context,
    session: Any,
    directory: CaDirectory,
    root_ids: tuple[RootCertificateId, ...],
    now: dt.datetime,
    *,
    standard: str | None = None,
) -> CpsChain | None:
    """The newest usable CPS leaf whose V2G root is one the car trusts (reference/iso15118.md §2.1), or None.

    ``standard`` keeps to CPS CAs of that edition (``iso15118-2``: P-256; ``iso15118-20``: P-521 / Ed448).
    """
    rows = repository.core_connection(session).execute(_CPS_LEAVES, {"now": now})
    for row in rows:
        if row.issuer_id not in directory.cas or utc(row.not_before) > now:
            continue
        if standard is not None and directory.cas[row.issuer_id].standard != standard:
            continue
        anchor = directory.anchor(row.issuer_id)  # ours, or the external V2G root it was installed under
        if not any(_names_root(root_id, anchor) for root_id in root_ids):
            continue
        try:
            ctx.check_chain_usable(directory, row.issuer_id)
        except PolicyViolation:
            continue
        return CpsChain(
            leaf=parsed.certificate(row.der),
            sub_certificates=tuple(der(certificate) for certificate in directory.presented(row.issuer_id)),
            key_id=str(row.key_id),
        )
    return None


# Built once (every provisioning request runs it): the usable CPS leaves, newest first.
_CERTIFICATE = CertificateRow.__table__  # type: ignore[attr-defined]
_CPS_LEAVES = (
    select(_CERTIFICATE.c.issuer_id, _CERTIFICATE.c.not_before, _CERTIFICATE.c.der, _CERTIFICATE.c.key_id)
    .where(
        _CERTIFICATE.c.profile == ProfileName.CPS_LEAF.value,
        _CERTIFICATE.c.status == "valid",
        _CERTIFICATE.c.key_id.is_not(None),
        _CERTIFICATE.c.not_after > bindparam("now", type_=_CERTIFICATE.c.not_after.type),
    )
    .order_by(_CERTIFICATE.c.id.desc())
)


def _names_root(root_id: RootCertificateId, root: x509.Certificate) -> bool:
    """X509IssuerSerial match: the serial exactly, the name as RFC 4514 text in either RDN order."""
    if root_id.serial_number != root.serial_number:
        return False
    orders = _name_orders(root_id.issuer_name)
    if orders is None:
        return _loose(root_id.issuer_name) == _loose(root.subject.rfc4514_string())
    return root.subject in orders


@functools.lru_cache(maxsize=256)
def _name_orders(text: str) -> tuple[x509.Name, x509.Name] | None:
    """The RFC 4514 ``text`` as a name, in its order and reversed; None if it does not parse.

    Parsed once per text: cars name the same few roots in every request.
    """
    try:
        named = x509.Name.from_rfc4514_string(text)
    except ValueError:
        return None
    return named, x509.Name(list(reversed(named.rdns)))


def _loose(text: str) -> str:
    return ",".join(sorted(part.strip().lower() for part in text.split(",")))


@dataclass(frozen=True, slots=True)
class SignedContractFields:
    """The six fields of a CertificateInstallationRes / CertificateUpdateRes with ResponseCode OK, and the
    header ``Signature`` the CPS leaf made over the four Id-carrying ones (ISO 15118-2 [V2G2-771])."""

    signature: Signature
    fields: tuple[
        ResponseCode, CertificateChain, CertificateChain, ContractSignatureEncryptedPrivateKey, DHPublicKey, EMAID
    ]

    def installation_res(self, session_id: bytes) -> V2GMessage:
        return V2GMessage(
            Header(session_id=session_id, signature=self.signature), CertificateInstallationRes(*self.fields)
        )


def cps_signed_fields(
    ctx: Context,
    cps: CpsChain,
    contract_certificate: bytes,
    contract_sub_certificates: tuple[bytes, ...],
    encrypted_private_key: bytes,
    dh_public_key: bytes,
    emaid: str,
) -> SignedContractFields:
    """Sign contract data with the CPS leaf: the one signing path of every CPS answer evpki makes."""
    contract_chain = CertificateChain(
        certificate=contract_certificate, sub_certificates=contract_sub_certificates, id=_RESPONSE_IDS[0]
    )
    encrypted = ContractSignatureEncryptedPrivateKey(id=_RESPONSE_IDS[1], value=encrypted_private_key)
    dh_element = DHPublicKey(id=_RESPONSE_IDS[2], value=dh_public_key)
    emaid_element = EMAID(id=_RESPONSE_IDS[3], value=emaid)
    signer = ctx.keys.load(cps.key_id)
    signature = sign_elements(
        (contract_chain, encrypted, dh_element, emaid_element),
        lambda data: signer.sign_bytes(data, rsa_pss=False),
    )
    sa_chain = CertificateChain(certificate=der(cps.leaf), sub_certificates=cps.sub_certificates)
    return SignedContractFields(
        signature, (ResponseCode.OK, sa_chain, contract_chain, encrypted, dh_element, emaid_element)
    )


def signed_response(
    ctx: Context,
    request: CertificateInstallationReq | CertificateUpdateReq,
    message: V2GMessage,
    cps: CpsChain,
    certificate: x509.Certificate,
    mo_subs: tuple[bytes, ...],
    contract_key: ec.EllipticCurvePrivateKey,
    peer: ec.EllipticCurvePublicKey,
    limit: int,
) -> str:
    wrapped = encrypt_contract_key(contract_key, peer)
    signed = cps_signed_fields(
        ctx,
        cps,
        der(certificate),
        mo_subs,
        wrapped.encrypted_private_key,
        wrapped.dh_public_key,
        common_name(certificate),
    )
    text = _encoded(request, Header(session_id=message.header.session_id, signature=signed.signature), signed.fields)
    if len(text) > limit:
        raise ResponseTooLarge(
            f"the exiResponse would be {len(text)} characters, over the limit of {limit}: shorten the subjects "
            "of the CPS and MO certificates, or use a station that advertises a larger "
            "Get15118EVCertificateResponse.exiResponse field length"
        )
    return text


def failure_response(
    request: CertificateInstallationReq | CertificateUpdateReq,
    session_id: bytes,
    response_code: ResponseCode,
    emaid: str | None,
) -> str:
    """An unsigned response carrying only ``response_code``; its other elements are placeholders."""
    placeholder = CertificateChain(certificate=b"\x00")
    fields = (
        response_code,
        placeholder,
        CertificateChain(certificate=b"\x00", id=_RESPONSE_IDS[0]),
        ContractSignatureEncryptedPrivateKey(id=_RESPONSE_IDS[1], value=b"\x00"),
        DHPublicKey(id=_RESPONSE_IDS[2], value=b"\x00"),
        EMAID(id=_RESPONSE_IDS[3], value=_placeholder_emaid(emaid)),
    )
    return _encoded(request, Header(session_id=session_id), fields)


def _encoded(
    request: CertificateInstallationReq | CertificateUpdateReq, header: Header, fields: tuple[Any, ...]
) -> str:
    """The base64 EXI of the response ``request`` asks for (Installation or Update Res) with ``fields``."""
    kind = CertificateInstallationRes if isinstance(request, CertificateInstallationReq) else CertificateUpdateRes
    return base64.b64encode(encode_message(V2GMessage(header, kind(*fields)))).decode("ascii")


def _placeholder_emaid(emaid: str | None) -> str:
    if emaid is not None:
        try:
            return contract_input.normalise_emaid(emaid)
        except EvpkiError:
            pass
    return _PLACEHOLDER_EMAID


def common_name(certificate: x509.Certificate) -> str:
    names = certificate.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
    return str(names[0].value) if names else ""


def der(certificate: x509.Certificate) -> bytes:
    return certificate.public_bytes(Encoding.DER)
