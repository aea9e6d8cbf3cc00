"""The vehicle's side of ISO 15118-20 contract provisioning, for `evpki ev ... --iso 20` and benches.

A -20 car holds a P-521 OEM provisioning key (the ECDH key too), or an Ed448 one plus an X448 key
named in its certificate's alternate public key ([V2G20-2534]). It signs its
``OEMProvisioningCertificateChain`` ([V2G20-1548]), lists the -20 V2G roots it trusts and how many
contract chains it takes (``MaximumContractCertificateChains``), and asks again while the answer's
``RemainingContractCertificateChains`` > 0. On each response it checks what a real EV checks: the
ResponseCode, the SessionID, the CPS signature over ``SignedInstallationData``, the CPS chain up to
one of its V2G roots, the contract chain up to an MO root, the decryption of the contract key
(ECDH, ConcatKDF SHA-512, AES-GCM with AAD = PCID ‖ SKI), that the key belongs to the contract
certificate and that its CN is an eMAID.

This module shares the -20 codec, signature check and key unwrap with the service -- it is a tool
for users integrating a station or a CSMS. The tests' independent -20 car is ``tests/interop/car20.py``.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass

from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, ed448, x448
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from cryptography.x509.oid import NameOID

from pki.ca.profiles import ALT_PUBLIC_KEY_OID
from pki.core.errors import EvpkiError, InvalidInput, VerificationFailed
from pki.iso15118 import exi20
from pki.iso15118.chains import ChainRejected, TrustStore, readable_certificate, validate_path
from pki.iso15118.exi import ExiError
from pki.iso15118.keywrap20 import WrappedContractKey, decrypt_contract_key
from pki.iso15118.messages import RootCertificateId
from pki.iso15118.messages20 import (
    CertificateInstallationReq,
    CertificateInstallationRes,
    MessageHeader,
    ResponseCode,
    SignedCertificateChain,
)
from pki.iso15118.signing20 import sign_fragment, verify_fragment

__all__ = [
    "CURVES",
    "CarKey",
    "InstalledContract20",
    "installation_request",
    "open_response",
    "vehicle_csr",
]

CURVES = ("p521", "x448")  # the car's key agreement: P-521 (signing with it), or X448 (signing with Ed448)
CarKey = ec.EllipticCurvePrivateKey | ed448.Ed448PrivateKey
AgreementPrivateKey = ec.EllipticCurvePrivateKey | x448.X448PrivateKey
_CHAIN_ID = "car1"


@dataclass(frozen=True, slots=True)
class InstalledContract20:
    """What the car keeps from one successful -20 response."""

    response_code: ResponseCode
    emaid: str
    certificate: x509.Certificate
    sub_certificates: tuple[x509.Certificate, ...]
    private_key: CarKey
    cps_chain: tuple[x509.Certificate, ...]
    ecdh_curve: str
    remaining: int  # RemainingContractCertificateChains


def vehicle_csr(pcid: str, curve: str = "p521") -> tuple[bytes, CarKey, x448.X448PrivateKey | None]:
    """A new -20 vehicle: its PEM CSR (CN = PCID, DC=OEM), signing key and, for ``x448``, its X448 key.

    ``p521``: one P-521 key signs and agrees. ``x448``: an Ed448 signing key, the X448 key's
    SubjectPublicKeyInfo in the CSR's alternate-public-key extension ([V2G20-2534]).
    """
    if curve not in CURVES:
        raise InvalidInput(f"the -20 vehicle curve is one of {', '.join(CURVES)}, not {curve!r}")
    subject = x509.Name(
        [x509.NameAttribute(NameOID.COMMON_NAME, pcid), x509.NameAttribute(NameOID.DOMAIN_COMPONENT, "OEM")]
    )
    builder = x509.CertificateSigningRequestBuilder().subject_name(subject)
    if curve == "p521":
        key_p521 = ec.generate_private_key(ec.SECP521R1())
        return builder.sign(key_p521, hashes.SHA512()).public_bytes(Encoding.PEM), key_p521, None
    key = ed448.Ed448PrivateKey.generate()
    agreement = x448.X448PrivateKey.generate()
    spki = agreement.public_key().public_bytes(Encoding.DER, PublicFormat.SubjectPublicKeyInfo)
    builder = builder.add_extension(x509.UnrecognizedExtension(ALT_PUBLIC_KEY_OID, spki), critical=False)
    return builder.sign(key, None).public_bytes(Encoding.PEM), key, agreement


def _sign(key: CarKey, data: bytes) -> bytes:
    if isinstance(key, ed448.Ed448PrivateKey):
        return key.sign(data)
    return key.sign(data, ec.ECDSA(hashes.SHA512()))


def installation_request(
    oem_chain: Sequence[x509.Certificate],
    oem_key: CarKey,
    v2g_roots: Sequence[x509.Certificate],
    *,
    session_id: bytes,
    timestamp: int,
    maximum: int = 1,
    prioritized_emaids: Sequence[str] = (),
) -> bytes:
    """A -20 CertificateInstallationReq, its OEM provisioning chain (leaf first) signed by ``oem_key``, EXI."""
    if not 0 <= maximum <= 255:
        raise InvalidInput("MaximumContractCertificateChains is 0..255")
    if len(prioritized_emaids) > 8:
        raise InvalidInput("at most 8 PrioritizedEMAIDs")
    chain = SignedCertificateChain(
        id=_CHAIN_ID,
        certificate=oem_chain[0].public_bytes(Encoding.DER),
        sub_certificates=tuple(c.public_bytes(Encoding.DER) for c in oem_chain[1:]),
    )
    try:
        signature = sign_fragment(chain, lambda data: _sign(oem_key, data), oem_key.public_key())
        request = CertificateInstallationReq(
            header=MessageHeader(session_id=session_id, timestamp=timestamp, signature=signature),
            oem_provisioning_certificate_chain=chain,
            root_certificate_ids=tuple(
                RootCertificateId(root.issuer.rfc4514_string(), root.serial_number) for root in v2g_roots
            ),
            maximum_contract_certificate_chains=maximum,
            prioritized_emaids=tuple(prioritized_emaids),
        )
        return exi20.encode_message(request)
    except ExiError as exc:
        raise InvalidInput(f"the -20 request cannot be encoded: {exc.message}") from None


def open_response(
    exi: bytes,
    agreement_key: AgreementPrivateKey,
    *,
    pcid: str,
    v2g_roots: Sequence[x509.Certificate],
    mo_roots: Sequence[x509.Certificate],
    session_id: bytes,
    now: dt.datetime,
) -> InstalledContract20:
    """Check a -20 CertificateInstallationRes as an EV would; :class:`VerificationFailed` says what fails."""
    try:
        response = exi20.decode_message(exi)
    except ExiError as exc:
        raise VerificationFailed(f"the response is not -20 EXI: {exc.message}") from None
    if not isinstance(response, CertificateInstallationRes):
        raise VerificationFailed(f"expected a -20 CertificateInstallationRes, got {type(response).__name__}")
    if response.header.session_id != session_id:
        raise VerificationFailed(
            f"the response's SessionID {response.header.session_id.hex()} is not the request's {session_id.hex()}"
        )
    if not response.response_code.ok:
        raise VerificationFailed(f"the CPS answered {response.response_code.value}")
    chain = response.cps_certificate_chain
    cps = (
        _certificate(chain.certificate, "the CPS certificate"),
        *(_certificate(d, "a CPS sub-CA") for d in chain.sub_certificates),
    )
    data = response.signed_installation_data
    verify_fragment(response.header.signature, data, cps[0].public_key(), what="the CPS signature")
    _path(cps[0], cps[1:], v2g_roots, now, "the CPS chain")
    contract_chain = data.contract_certificate_chain
    contract = _certificate(contract_chain.certificate, "the contract certificate")
    subs = tuple(_certificate(d, "a contract sub-CA") for d in contract_chain.sub_certificates)
    _path(contract, subs, mo_roots, now, "the contract chain")
    names = contract.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
    if not names:
        raise VerificationFailed("the contract certificate has no CN (the eMAID)")
    try:
        ski = contract.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value.digest
        wrapped = WrappedContractKey(data.ecdh_curve, data.dh_public_key, data.encrypted_private_key.value)
        key = decrypt_contract_key(wrapped, agreement_key, pcid=pcid, ski=ski)
    except x509.ExtensionNotFound:
        raise VerificationFailed("the contract certificate has no subject key identifier (the AAD)") from None
    except EvpkiError as exc:
        raise VerificationFailed(f"the contract key: {exc.message}") from None
    spki = PublicFormat.SubjectPublicKeyInfo
    if key.public_key().public_bytes(Encoding.DER, spki) != contract.public_key().public_bytes(Encoding.DER, spki):
        raise VerificationFailed("the decrypted contract key does not belong to the contract certificate")
    return InstalledContract20(
        response.response_code,
        str(names[0].value),
        contract,
        subs,
        key,
        cps,
        data.ecdh_curve.value,
        response.remaining_contract_certificate_chains,
    )


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
