"""XML signatures over EXI fragments, as ISO 15118-2 uses them in the header of a V2G message.

Each signed element is encoded alone as an EXI fragment and hashed with SHA-256 into a
``Reference`` (``URI="#<Id>"``, transform and canonicalization Canonical EXI); ``SignedInfo`` is
encoded as an xmldsig fragment and signed with ECDSA P-256 / SHA-256, and ``SignatureValue``
carries the raw ``r‖s`` (ISO 15118-2 [V2G2-771], reference/iso15118.md §2.2). There is no
``KeyInfo``: the verifier takes the key from a certificate in the body.

This module owns both directions: :func:`sign_elements` (the CPS signing a response, a car
signing its request) and :func:`verify_elements` (the CPS verifying a request, a car verifying
a response). Verification is strict about the algorithms and requires exactly the expected
elements to be referenced, in any order (Hubject lists them out of order).
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Mapping, Sequence

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.types import CertificatePublicKeyTypes
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature, encode_dss_signature

from pki.core.errors import VerificationFailed
from pki.iso15118.exi import Fragment, encode_fragment, encode_signed_info
from pki.iso15118.messages import (
    Reference,
    Signature,
    SignedInfo,
)

__all__ = [
    "CANONICAL_EXI",
    "ECDSA_SHA256",
    "SHA256",
    "SignableElement",
    "element_id",
    "sign_elements",
    "verify_elements",
]

CANONICAL_EXI = "http://www.w3.org/TR/canonical-exi/"
SHA256 = "http://www.w3.org/2001/04/xmlenc#sha256"
ECDSA_SHA256 = "http://www.w3.org/2001/04/xmldsig-more#ecdsa-sha256"
_COORDINATE_BYTES = 32

SignableElement = Fragment  # the elements ISO 15118-2 signs by Id
# Produces a DER ECDSA signature over the bytes given (the key store's Signer.sign_bytes, or a car's key).
SignBytes = Callable[[bytes], bytes]


def element_id(element: SignableElement) -> str:
    identifier = element.id
    if not identifier:
        raise VerificationFailed(f"a signed {type(element).__name__} needs an Id attribute")
    return identifier


def _reference(element: SignableElement) -> Reference:
    return Reference(
        uri=f"#{element_id(element)}",
        digest_method=SHA256,
        digest_value=hashlib.sha256(encode_fragment(element)).digest(),
        transforms=(CANONICAL_EXI,),
    )


def sign_elements(elements: Sequence[SignableElement], sign: SignBytes) -> Signature:
    """The header ``Signature`` over ``elements``; ``sign`` returns DER ECDSA-P256/SHA-256."""
    signed_info = SignedInfo(
        canonicalization_method=CANONICAL_EXI,
        signature_method=ECDSA_SHA256,
        references=tuple(_reference(element) for element in elements),
    )
    r, s = decode_dss_signature(sign(encode_signed_info(signed_info)))
    raw = r.to_bytes(_COORDINATE_BYTES, "big") + s.to_bytes(_COORDINATE_BYTES, "big")
    return Signature(signed_info=signed_info, signature_value=raw)


def verify_elements(
    signature: Signature | None,
    elements: Sequence[SignableElement],
    public_key: CertificatePublicKeyTypes,
    *,
    what: str,
) -> None:
    """Check that ``signature`` covers exactly ``elements`` (by Id) and was made by ``public_key``.

    Raises :class:`VerificationFailed` naming what is wrong; ``what`` says whose signature it is.
    """
    if signature is None:
        raise VerificationFailed(f"{what}: the message header carries no Signature")
    info = signature.signed_info
    if info.canonicalization_method != CANONICAL_EXI:
        raise VerificationFailed(f"{what}: unsupported CanonicalizationMethod {info.canonicalization_method!r}")
    if info.signature_method != ECDSA_SHA256:
        raise VerificationFailed(f"{what}: unsupported SignatureMethod {info.signature_method!r}")
    by_id: Mapping[str, SignableElement] = {element_id(element): element for element in elements}
    seen: set[str] = set()
    for reference in info.references:
        uri = reference.uri or ""
        target = by_id.get(uri[1:]) if uri.startswith("#") else None
        if target is None:
            raise VerificationFailed(f"{what}: Reference URI {uri!r} names no signed element of this message")
        if uri in seen:
            raise VerificationFailed(f"{what}: Reference URI {uri!r} appears twice")
        seen.add(uri)
        if reference.digest_method != SHA256:
            raise VerificationFailed(f"{what}: unsupported DigestMethod {reference.digest_method!r} for {uri}")
        if reference.transforms != (CANONICAL_EXI,):
            raise VerificationFailed(f"{what}: Reference {uri} must have exactly the Canonical EXI transform")
        if hashlib.sha256(encode_fragment(target)).digest() != reference.digest_value:
            raise VerificationFailed(f"{what}: the digest of {uri} does not match the element")
    missing = sorted(f"#{identifier}" for identifier in by_id if f"#{identifier}" not in seen)
    if missing:
        raise VerificationFailed(f"{what}: the signature does not cover {', '.join(missing)}")
    if not isinstance(public_key, ec.EllipticCurvePublicKey) or not isinstance(public_key.curve, ec.SECP256R1):
        raise VerificationFailed(f"{what}: the signing certificate has no P-256 key (ISO 15118-2 uses ECDSA P-256)")
    raw = signature.signature_value
    if len(raw) != 2 * _COORDINATE_BYTES:
        raise VerificationFailed(f"{what}: SignatureValue is {len(raw)} bytes, not the 64 of a raw P-256 r‖s")
    der = encode_dss_signature(int.from_bytes(raw[:_COORDINATE_BYTES], "big"), int.from_bytes(raw[32:], "big"))
    try:
        public_key.verify(der, encode_signed_info(info), ec.ECDSA(hashes.SHA256()))
    except InvalidSignature:
        raise VerificationFailed(f"{what}: the signature does not verify with the signing certificate's key") from None
