"""The vehicle's side of ISO 15118-2 contract provisioning, for `evpki ev simulate-install` and benches.

A car builds a CertificateInstallationReq (or CertificateUpdateReq), signs it with its OEM
provisioning key (or current contract key) and lists the V2G roots it trusts. On the response it
checks what a real EV checks: the ResponseCode, the SessionID, the CPS signature over the four
signed elements, the CPS chain up to one of its V2G roots, the contract chain up to the MO root
it is given, then decrypts the contract key and checks it belongs to the contract certificate.

This module shares the codec and the signature check with the service -- it is a tool for users
integrating a station or a CSMS. The tests' independent car lives in ``tests/interop/car.py``.
"""

from __future__ import annotations

import datetime as dt
import os
from collections.abc import Sequence
from dataclasses import dataclass

from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from cryptography.x509.oid import NameOID

from pki.core.errors import VerificationFailed
from pki.iso15118.chains import ChainRejected, TrustStore, readable_certificate, validate_path
from pki.iso15118.exi import decode_message, encode_message
from pki.iso15118.keywrap import WrappedContractKey, decrypt_contract_key
from pki.iso15118.messages import (
    CertificateChain,
    CertificateInstallationReq,
    CertificateInstallationRes,
    CertificateUpdateReq,
    CertificateUpdateRes,
    Header,
    ResponseCode,
    RootCertificateId,
    V2GMessage,
)
from pki.iso15118.signing import sign_elements, verify_elements

__all__ = [
    "InstalledContract",
    "installation_request",
    "open_response",
    "root_ids",
    "update_request",
    "vehicle_csr",
]

_REQUEST_ID = "id1"


@dataclass(frozen=True, slots=True)
class InstalledContract:
    """What the car keeps from a successful response."""

    response_code: ResponseCode
    emaid: str
    certificate: x509.Certificate
    sub_certificates: tuple[x509.Certificate, ...]
    private_key: ec.EllipticCurvePrivateKey
    cps_chain: tuple[x509.Certificate, ...]


def vehicle_csr(pcid: str) -> tuple[bytes, ec.EllipticCurvePrivateKey]:
    """A new vehicle key and the PEM CSR for its OEM provisioning certificate (CN = PCID, DC=OEM)."""
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name(
        [x509.NameAttribute(NameOID.COMMON_NAME, pcid), x509.NameAttribute(NameOID.DOMAIN_COMPONENT, "OEM")]
    )
    csr = x509.CertificateSigningRequestBuilder().subject_name(subject).sign(key, hashes.SHA256())
    return csr.public_bytes(Encoding.PEM), key


def root_ids(roots: Sequence[x509.Certificate]) -> tuple[RootCertificateId, ...]:
    """``ListOfRootCertificateIDs``: issuer name (RFC 4514) and serial of each trusted V2G root."""
    return tuple(RootCertificateId(root.issuer.rfc4514_string(), root.serial_number) for root in roots)


def installation_request(
    oem_certificate: x509.Certificate,
    oem_key: ec.EllipticCurvePrivateKey,
    v2g_roots: Sequence[x509.Certificate],
    session_id: bytes | None = None,
) -> bytes:
    """A signed CertificateInstallationReq message, EXI-encoded."""
    request = CertificateInstallationReq(
        id=_REQUEST_ID,
        oem_provisioning_cert=oem_certificate.public_bytes(Encoding.DER),
        root_certificate_ids=root_ids(v2g_roots),
    )
    return _signed_message(request, oem_key, session_id)


def update_request(
    contract: InstalledContract,
    v2g_roots: Sequence[x509.Certificate],
    session_id: bytes | None = None,
) -> bytes:
    """A signed CertificateUpdateReq message for the contract the car holds."""
    chain = CertificateChain(
        certificate=contract.certificate.public_bytes(Encoding.DER),
        sub_certificates=tuple(c.public_bytes(Encoding.DER) for c in contract.sub_certificates),
    )
    request = CertificateUpdateReq(
        id=_REQUEST_ID,
        contract_signature_cert_chain=chain,
        emaid=contract.emaid,
        root_certificate_ids=root_ids(v2g_roots),
    )
    return _signed_message(request, contract.private_key, session_id)


def _signed_message(
    request: CertificateInstallationReq | CertificateUpdateReq,
    key: ec.EllipticCurvePrivateKey,
    session_id: bytes | None,
) -> bytes:
    """The V2G message carrying ``request`` signed by ``key`` (a fresh random SessionID when None)."""
    signature = sign_elements((request,), lambda data: key.sign(data, ec.ECDSA(hashes.SHA256())))
    header = Header(session_id=session_id if session_id is not None else os.urandom(8), signature=signature)
    return encode_message(V2GMessage(header, request))


def open_response(
    exi: bytes,
    own_key: ec.EllipticCurvePrivateKey,
    *,
    v2g_roots: Sequence[x509.Certificate],
    mo_roots: Sequence[x509.Certificate],
    session_id: bytes,
    now: dt.datetime,
) -> InstalledContract:
    """Check a CertificateInstallationRes/UpdateRes as an EV would; :class:`VerificationFailed` says what fails.

    ``own_key`` is the OEM provisioning key after an installation request, the old contract key
    after an update request.
    """
    message = decode_message(exi)
    body = message.body
    if not isinstance(body, CertificateInstallationRes | CertificateUpdateRes):
        raise VerificationFailed(f"expected a certificate installation or update response, got {type(body).__name__}")
    if message.header.session_id != session_id:
        raise VerificationFailed(
            f"the response's SessionID {message.header.session_id.hex()} is not the request's {session_id.hex()}"
        )
    if not body.response_code.ok:
        raise VerificationFailed(f"the CPS answered {body.response_code.value}")
    cps = [_certificate(body.sa_provisioning_certificate_chain.certificate, "the CPS certificate")]
    cps += [_certificate(d, "a CPS sub-CA") for d in body.sa_provisioning_certificate_chain.sub_certificates]
    signed = (
        body.contract_signature_cert_chain,
        body.contract_signature_encrypted_private_key,
        body.dh_public_key,
        body.emaid,
    )
    verify_elements(message.header.signature, signed, cps[0].public_key(), what="the CPS signature")
    _path(cps[0], cps[1:], v2g_roots, now, "the CPS chain")
    contract = _certificate(body.contract_signature_cert_chain.certificate, "the contract certificate")
    subs = tuple(_certificate(d, "a contract sub-CA") for d in body.contract_signature_cert_chain.sub_certificates)
    _path(contract, subs, mo_roots, now, "the contract chain")
    names = contract.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
    if not names or names[0].value != body.emaid.value:
        raise VerificationFailed(f"the contract certificate's CN is not the eMAID {body.emaid.value}")
    wrapped = WrappedContractKey(body.dh_public_key.value, body.contract_signature_encrypted_private_key.value)
    key = decrypt_contract_key(wrapped, own_key)
    if _point(key.public_key()) != _point(contract.public_key()):
        raise VerificationFailed("the decrypted contract key does not belong to the contract certificate")
    return InstalledContract(body.response_code, body.emaid.value, contract, subs, key, tuple(cps))


def _certificate(der: bytes, what: str) -> x509.Certificate:
    certificate = readable_certificate(der)
    if certificate is None:
        raise VerificationFailed(f"{what} is not a DER certificate")
    return certificate


def _path(
    leaf: x509.Certificate,
    subs: Sequence[x509.Certificate],
    roots: Sequence[x509.Certificate],
    now: dt.datetime,
    what: str,
) -> None:
    try:
        validate_path(leaf, tuple(subs), TrustStore(tuple(roots)), now, what=what)
    except ChainRejected as exc:
        raise VerificationFailed(exc.message) from None


def _point(key: object) -> bytes:
    if not isinstance(key, ec.EllipticCurvePublicKey):
        raise VerificationFailed("the contract certificate has no EC key")
    return key.public_bytes(Encoding.X962, PublicFormat.UncompressedPoint)
