"""XML signatures over the -20 EXI fragments: the EV's over ``OEMProvisioningCertificateChain``
([V2G20-1548]) and the CPS's over ``SignedInstallationData``.

As in ISO 15118-2 (:mod:`pki.iso15118.signing`): the signed element is encoded alone as an EXI
fragment (-20 grammar, :func:`pki.iso15118.exi20.encode_fragment`) and digested into a
``Reference`` (``URI="#<Id>"``, the Canonical EXI transform); ``SignedInfo`` is encoded with the
xmldsig grammar and signed; there is no ``KeyInfo``. The -20 algorithms ([V2G20-1000], reference
iso15118.md §2.6): SHA-512 digests, and ECDSA P-521 with SHA-512 (``SignatureValue`` the raw
``r ‖ s``, 66 bytes each, 132 in all) or Ed448 (the 114-byte RFC 8032 signature).

[unverified] which digest an Ed448 signer writes: RFC 9231 pairs Ed448 with SHAKE256. evpki writes
SHA-512 digests for both curves and accepts SHA-512 or SHAKE256 (64 bytes) when it verifies.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, ed448
from cryptography.hazmat.primitives.asymmetric.types import CertificatePublicKeyTypes
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature, encode_dss_signature

from pki.core.errors import VerificationFailed
from pki.iso15118 import exi20
from pki.iso15118.exi import ExiError
from pki.iso15118.messages20 import (
    C14N_EXI,
    ECDSA_SHA512,
    EDDSA_ED448,
    SHA512,
    SHAKE256,
    Reference,
    Signature,
    SignedCertificateChain,
    SignedInfo,
    SignedInstallationData,
)

__all__ = ["SignBytes", "digest", "sign_fragment", "signature_method", "verify_fragment"]

SignedElement = SignedCertificateChain | SignedInstallationData
# Signs the bytes given: DER ECDSA (the key store's Signer.sign_bytes for a P-521 key) or raw Ed448.
SignBytes = Callable[[bytes], bytes]
_P521_COORDINATE = 66
_ED448_SIGNATURE = 114
_DIGESTS: dict[str, Callable[[bytes], bytes]] = {
    SHA512: lambda data: hashlib.sha512(data).digest(),
    SHAKE256: lambda data: hashlib.shake_256(data).digest(64),
}


def signature_method(public_key: object) -> str:
    """The -20 SignatureMethod of a signer's key; :class:`VerificationFailed` for any other key."""
    if isinstance(public_key, ec.EllipticCurvePublicKey) and isinstance(public_key.curve, ec.SECP521R1):
        return ECDSA_SHA512
    if isinstance(public_key, ed448.Ed448PublicKey):
        return EDDSA_ED448
    raise VerificationFailed("ISO 15118-20 signs with ECDSA P-521 or Ed448 ([V2G20-1000])")


def digest(element: SignedElement, method: str = SHA512) -> bytes:
    return _DIGESTS[method](exi20.encode_fragment(element))


def sign_fragment(element: SignedElement, sign: SignBytes, public_key: object) -> Signature:
    """The header ``Signature`` over ``element`` by the key behind ``public_key``."""
    method = signature_method(public_key)
    signed_info = SignedInfo(
        canonicalization_method=C14N_EXI,
        signature_method=method,
        references=(
            Reference(uri=f"#{element.id}", digest_method=SHA512, digest_value=digest(element), transforms=(C14N_EXI,)),
        ),
    )
    produced = sign(exi20.encode_signed_info(signed_info))
    if method == ECDSA_SHA512:
        r, s = decode_dss_signature(produced)
        produced = r.to_bytes(_P521_COORDINATE, "big") + s.to_bytes(_P521_COORDINATE, "big")
    return Signature(signed_info=signed_info, signature_value=produced)


def verify_fragment(
    signature: Signature | None, element: SignedElement, public_key: CertificatePublicKeyTypes, *, what: str
) -> None:
    """Check that ``signature`` covers exactly ``element`` (by Id) and was made by ``public_key``."""
    if signature is None:
        raise VerificationFailed(f"{what}: the message header carries no Signature")
    info = signature.signed_info
    if info.canonicalization_method != C14N_EXI:
        raise VerificationFailed(f"{what}: unsupported CanonicalizationMethod {info.canonicalization_method!r}")
    method = signature_method(public_key)
    if info.signature_method != method:
        raise VerificationFailed(f"{what}: SignatureMethod {info.signature_method!r} does not match the key ({method})")
    if len(info.references) != 1 or info.references[0].uri != f"#{element.id}":
        uris = ", ".join(repr(r.uri) for r in info.references)
        raise VerificationFailed(f"{what}: the signature must reference #{element.id} alone, not {uris}")
    reference = info.references[0]
    if reference.digest_method not in _DIGESTS:
        raise VerificationFailed(f"{what}: unsupported DigestMethod {reference.digest_method!r}")
    if reference.transforms != (C14N_EXI,):
        raise VerificationFailed(f"{what}: the Reference must have exactly the Canonical EXI transform")
    try:
        if digest(element, reference.digest_method) != reference.digest_value:
            raise VerificationFailed(f"{what}: the digest of #{element.id} does not match the element")
        signed_bytes = exi20.encode_signed_info(info)
    except ExiError as exc:
        raise VerificationFailed(f"{what}: cannot re-encode the signed data: {exc.message}") from None
    raw = signature.signature_value
    try:
        if isinstance(public_key, ed448.Ed448PublicKey):
            if len(raw) != _ED448_SIGNATURE:
                raise VerificationFailed(f"{what}: an Ed448 SignatureValue is 114 bytes, not {len(raw)}")
            public_key.verify(raw, signed_bytes)
        else:
            assert isinstance(public_key, ec.EllipticCurvePublicKey)
            if len(raw) != 2 * _P521_COORDINATE:
                raise VerificationFailed(f"{what}: a P-521 SignatureValue is the 132-byte r‖s, not {len(raw)} bytes")
            der = encode_dss_signature(int.from_bytes(raw[:66], "big"), int.from_bytes(raw[66:], "big"))
            public_key.verify(der, signed_bytes, ec.ECDSA(hashes.SHA512()))
    except InvalidSignature:
        raise VerificationFailed(f"{what}: the signature does not verify with the signing certificate's key") from None
