"""An independent ISO 15118-20 electric vehicle for the -20 contract provisioning tests.

Shares no code with the provisioning service, nor with our -20 codec, signing or key wrap: every
EXI byte it writes or reads goes through EXIficient's -20 grammar (:class:`tests.interop.exificient20.Exificient20`,
the XML converters there), and all cryptography is ``cryptography``'s primitives used here: ECDSA
P-521/SHA-512 with raw ``r‖s`` or Ed448, ECDH on P-521 or X448, ConcatKDF(SHA-512) → 256 bits with
OtherInfo 01 'U' 'V', AES-GCM-256 with AAD = PCID ‖ upper-case hex SKI, X.509 signatures along the chains.

API::

    exi = build_request(oracle, car_key, oem_chain_der, root_ids, session_id, maximum=1, emaids=())
    got = open_response(oracle, exi_response, agreement_key, pcid, session_id, v2g_roots, mo_roots, now)
    got.certificate, got.private_key, got.emaid, got.remaining

``agreement_key`` is the car's P-521 OEM key, or the X448 key behind its OEM certificate's alternate
public key. :func:`open_response` checks, in order: that EXIficient re-encodes the response to the
same bytes, the SessionID, the ResponseCode (``CarRejects.response_code`` otherwise), the SignedInfo
(one Reference to the SignedInstallationData Id, Canonical EXI, SHA-512), the digest over
EXIficient's own fragment encoding, the CPS signature over EXIficient's SignedInfo encoding, the CPS
and contract chains to the given roots, the key agreement and decryption (top 7 bits zero for P-521,
[V2G20-2678]), that the key belongs to the contract certificate, and CN = eMAID.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import itertools
from collections.abc import Sequence
from dataclasses import dataclass

from cryptography import x509
from cryptography.exceptions import InvalidSignature, InvalidTag
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed448, x448
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature, encode_dss_signature
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.concatkdf import ConcatKDFHash
from cryptography.x509.oid import NameOID

from pki.iso15118.messages import Reference, RootCertificateId, Signature, SignedInfo
from pki.iso15118.messages20 import (
    CertificateInstallationReq,
    CertificateInstallationRes,
    MessageHeader,
    SignedCertificateChain,
)
from tests.interop.exificient20 import Exificient20

__all__ = ["CarRejects", "Installed", "build_request", "open_response"]

C14N = "http://www.w3.org/TR/canonical-exi/"
SHA512_URI = "http://www.w3.org/2001/04/xmlenc#sha512"
ECDSA_SHA512_URI = "http://www.w3.org/2001/04/xmldsig-more#ecdsa-sha512"
ED448_URI = "http://www.w3.org/2021/04/xmldsig-more#eddsa-ed448"

CarKey = ec.EllipticCurvePrivateKey | ed448.Ed448PrivateKey


class CarRejects(Exception):
    def __init__(self, message: str, response_code: str | None = None) -> None:
        super().__init__(message)
        self.response_code = response_code


@dataclass(frozen=True)
class Installed:
    emaid: str
    certificate: x509.Certificate
    sub_certificates: tuple[x509.Certificate, ...]
    private_key: CarKey
    remaining: int
    ecdh_curve: str


def _sign(key: CarKey, data: bytes) -> bytes:
    if isinstance(key, ed448.Ed448PrivateKey):
        return key.sign(data)
    r, s = decode_dss_signature(key.sign(data, ec.ECDSA(hashes.SHA512())))
    return r.to_bytes(66, "big") + s.to_bytes(66, "big")


def _verify(public_key: object, signature: bytes, data: bytes) -> bool:
    try:
        if isinstance(public_key, ed448.Ed448PublicKey):
            public_key.verify(signature, data)
        elif isinstance(public_key, ec.EllipticCurvePublicKey) and len(signature) == 132:
            der = encode_dss_signature(int.from_bytes(signature[:66], "big"), int.from_bytes(signature[66:], "big"))
            public_key.verify(der, data, ec.ECDSA(hashes.SHA512()))
        else:
            return False
    except InvalidSignature:
        return False
    return True


def build_request(
    oracle: Exificient20,
    car_key: CarKey,
    oem_chain: Sequence[bytes],
    root_ids: Sequence[tuple[str, int]],
    session_id: bytes,
    *,
    maximum: int = 1,
    emaids: Sequence[str] = (),
    timestamp: int = 1_767_225_600,
) -> bytes:
    """A CertificateInstallationReq whose OEMProvisioningCertificateChain the car signs ([V2G20-1548])."""
    chain = SignedCertificateChain(id="car1", certificate=oem_chain[0], sub_certificates=tuple(oem_chain[1:]))
    digest = hashlib.sha512(oracle.encode_fragment(chain)).digest()
    method = ED448_URI if isinstance(car_key, ed448.Ed448PrivateKey) else ECDSA_SHA512_URI
    signed_info = SignedInfo(
        canonicalization_method=C14N,
        signature_method=method,
        references=(Reference(uri="#car1", digest_method=SHA512_URI, digest_value=digest, transforms=(C14N,)),),
    )
    signature = Signature(signed_info, _sign(car_key, oracle.encode_signed_info(signed_info)))
    request = CertificateInstallationReq(
        header=MessageHeader(session_id=session_id, timestamp=timestamp, signature=signature),
        oem_provisioning_certificate_chain=chain,
        root_certificate_ids=tuple(RootCertificateId(name, serial) for name, serial in root_ids),
        maximum_contract_certificate_chains=maximum,
        prioritized_emaids=tuple(emaids),
    )
    return oracle.encode_message(request)


def _verify_chain(
    chain: Sequence[x509.Certificate], roots: Sequence[x509.Certificate], now: dt.datetime, what: str
) -> None:
    for certificate in chain:
        if not certificate.not_valid_before_utc <= now < certificate.not_valid_after_utc:
            raise CarRejects(f"{what}: {certificate.subject.rfc4514_string()} is not valid now")
    for child, issuer in itertools.pairwise(chain):
        try:
            child.verify_directly_issued_by(issuer)
        except (ValueError, TypeError, InvalidSignature) as exc:
            raise CarRejects(f"{what}: {child.subject.rfc4514_string()} is not signed by the next one") from exc
    for root in roots:
        try:
            chain[-1].verify_directly_issued_by(root)
            return
        except (ValueError, TypeError, InvalidSignature):
            continue
    raise CarRejects(f"{what} does not end below a trusted root")


def _certificates(leaf: bytes, subs: Sequence[bytes]) -> tuple[x509.Certificate, ...]:
    return tuple(x509.load_der_x509_certificate(d) for d in (leaf, *subs))


def open_response(
    oracle: Exificient20,
    exi_response: str,
    agreement_key: ec.EllipticCurvePrivateKey | x448.X448PrivateKey,
    pcid: str,
    session_id: bytes,
    v2g_roots: Sequence[x509.Certificate],
    mo_roots: Sequence[x509.Certificate],
    now: dt.datetime,
) -> Installed:
    raw = base64.b64decode(exi_response)
    response = oracle.decode_message(raw)
    if not isinstance(response, CertificateInstallationRes):
        raise CarRejects(f"expected a CertificateInstallationRes, got {type(response).__name__}")
    if oracle.encode_message(response) != raw:
        raise CarRejects("EXIficient does not re-encode the response to the same bytes")
    if response.header.session_id != session_id:
        raise CarRejects("the SessionID is not the request's")
    if not response.response_code.value.startswith("OK"):
        raise CarRejects(f"the CPS answered {response.response_code.value}", response.response_code.value)
    signature = response.header.signature
    data = response.signed_installation_data
    if signature is None:
        raise CarRejects("the response is not signed")
    info = signature.signed_info
    (reference,) = info.references
    if reference.uri != f"#{data.id}" or reference.transforms != (C14N,) or reference.digest_method != SHA512_URI:
        raise CarRejects(f"unexpected Reference {reference}")
    if hashlib.sha512(oracle.encode_fragment(data)).digest() != reference.digest_value:
        raise CarRejects("the SignedInstallationData digest does not match EXIficient's fragment")
    cps = _certificates(response.cps_certificate_chain.certificate, response.cps_certificate_chain.sub_certificates)
    expected_method = ED448_URI if isinstance(cps[0].public_key(), ed448.Ed448PublicKey) else ECDSA_SHA512_URI
    if info.signature_method != expected_method or info.canonicalization_method != C14N:
        raise CarRejects(f"unexpected SignedInfo algorithms {info.signature_method}")
    if not _verify(cps[0].public_key(), signature.signature_value, oracle.encode_signed_info(info)):
        raise CarRejects("the CPS signature does not verify over EXIficient's SignedInfo")
    _verify_chain(cps, v2g_roots, now, "the CPS chain")
    chain = data.contract_certificate_chain
    contract = _certificates(chain.certificate, chain.sub_certificates)
    _verify_chain(contract, mo_roots, now, "the contract chain")
    key = _decrypt(data, agreement_key, pcid, contract[0])
    emaid = str(contract[0].subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value)
    return Installed(
        emaid, contract[0], contract[1:], key, response.remaining_contract_certificate_chains, data.ecdh_curve.value
    )


def _decrypt(data: object, agreement_key: object, pcid: str, certificate: x509.Certificate) -> CarKey:
    curve = data.ecdh_curve.value  # type: ignore[attr-defined]
    dh = data.dh_public_key  # type: ignore[attr-defined]
    blob = data.encrypted_private_key.value  # type: ignore[attr-defined]
    element = data.encrypted_private_key.key_type.value  # type: ignore[attr-defined]
    if curve == "SECP521":
        if element != "SECP521_EncryptedPrivateKey" or len(blob) != 94 or len(dh) != 133:
            raise CarRejects("SECP521 needs a 94-byte SECP521_EncryptedPrivateKey and a 133-byte DHPublicKey")
        assert isinstance(agreement_key, ec.EllipticCurvePrivateKey)
        peer = ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP521R1(), dh)
        shared = agreement_key.exchange(ec.ECDH(), peer)
    else:
        if element != "X448_EncryptedPrivateKey" or len(blob) != 84 or len(dh) != 56:
            raise CarRejects("X448 needs an 84-byte X448_EncryptedPrivateKey and a 56-byte DHPublicKey")
        assert isinstance(agreement_key, x448.X448PrivateKey)
        shared = agreement_key.exchange(x448.X448PublicKey.from_public_bytes(dh))
    session_key = ConcatKDFHash(hashes.SHA512(), 32, otherinfo=b"\x01\x55\x56").derive(shared)
    ski = certificate.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value.digest
    aad = pcid.upper().encode() + ski.hex().upper().encode()
    try:
        plain = AESGCM(session_key).decrypt(blob[:12], blob[12:], aad)
    except InvalidTag as exc:
        raise CarRejects("the contract key does not authenticate") from exc
    public = certificate.public_key()
    key: CarKey
    if curve == "SECP521":
        if plain[0] & 0xFE:
            raise CarRejects("non-zero padding bits in the P-521 key ([V2G20-2678])")
        key = ec.derive_private_key(int.from_bytes(plain, "big"), ec.SECP521R1())
    else:
        key = ed448.Ed448PrivateKey.from_private_bytes(plain + b"\x00")
    spki = serialization.PublicFormat.SubjectPublicKeyInfo
    if key.public_key().public_bytes(serialization.Encoding.DER, spki) != public.public_bytes(
        serialization.Encoding.DER, spki
    ):
        raise CarRejects("the decrypted key does not belong to the contract certificate")
    return key
