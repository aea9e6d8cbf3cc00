"""Key algorithms evpki generates and accepts, and how each one signs.

An algorithm is named by a short stable string used in the hierarchy TOML and in policies:
``ec-p256``, ``ec-p384``, ``ec-p521``, ``ed448``, ``ed25519``, ``rsa-2048``, ``rsa-3072``,
``rsa-4096``. :func:`describe_key` gives the same name for a public key found in a CSR
(``ec-brainpoolP256r1`` and ``rsa-<bits>`` for sizes we do not generate).
"""

from __future__ import annotations

from dataclasses import dataclass

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, ed448, ed25519, padding, rsa
from cryptography.hazmat.primitives.asymmetric import utils as asym_utils
from cryptography.hazmat.primitives.asymmetric.types import (
    CertificateIssuerPrivateKeyTypes,
    CertificatePublicKeyTypes,
)

from pki.core.errors import InvalidInput

__all__ = [
    "EC_CURVES",
    "GENERATED_ALGORITHMS",
    "RSA_BITS",
    "KeyDescription",
    "describe_key",
    "generate_private_key",
    "sign_with_key",
    "signature_hash",
    "signature_padding",
]

EC_CURVES: dict[str, type[ec.EllipticCurve]] = {
    "ec-p256": ec.SECP256R1,
    "ec-p384": ec.SECP384R1,
    "ec-p521": ec.SECP521R1,
}
RSA_BITS = {"rsa-2048": 2048, "rsa-3072": 3072, "rsa-4096": 4096}
GENERATED_ALGORITHMS = (*EC_CURVES, "ed448", "ed25519", *RSA_BITS)

_CURVE_NAMES = {
    "secp256r1": "ec-p256",
    "secp384r1": "ec-p384",
    "secp521r1": "ec-p521",
    "secp224r1": "ec-p224",
    "brainpoolP256r1": "ec-brainpoolP256r1",
    "brainpoolP384r1": "ec-brainpoolP384r1",
    "brainpoolP512r1": "ec-brainpoolP512r1",
}


@dataclass(frozen=True, slots=True)
class KeyDescription:
    """What policy needs to know of a public key."""

    name: str  # e.g. "ec-p256", "rsa-3072", "ed448", "ec-secp192r1"
    family: str  # "rsa" | "ec" | "eddsa" | "other"
    bits: int
    rsa_public_exponent: int | None = None


def generate_private_key(algorithm: str) -> CertificateIssuerPrivateKeyTypes:
    if algorithm in EC_CURVES:
        return ec.generate_private_key(EC_CURVES[algorithm]())
    if algorithm in RSA_BITS:
        return rsa.generate_private_key(public_exponent=65537, key_size=RSA_BITS[algorithm])
    if algorithm == "ed448":
        return ed448.Ed448PrivateKey.generate()
    if algorithm == "ed25519":
        return ed25519.Ed25519PrivateKey.generate()
    raise InvalidInput(f"unknown key algorithm {algorithm!r}; choose one of {', '.join(GENERATED_ALGORITHMS)}")


def describe_key(key: object) -> KeyDescription:
    if isinstance(key, rsa.RSAPublicKey):
        return KeyDescription(f"rsa-{key.key_size}", "rsa", key.key_size, key.public_numbers().e)
    if isinstance(key, ec.EllipticCurvePublicKey):
        name = _CURVE_NAMES.get(key.curve.name, f"ec-{key.curve.name}")
        return KeyDescription(name, "ec", key.curve.key_size)
    if isinstance(key, ed448.Ed448PublicKey):
        return KeyDescription("ed448", "eddsa", 448)
    if isinstance(key, ed25519.Ed25519PublicKey):
        return KeyDescription("ed25519", "eddsa", 255)
    return KeyDescription(type(key).__name__, "other", 0)


def signature_hash(key: CertificatePublicKeyTypes) -> hashes.HashAlgorithm | None:
    """The digest a CA with this key signs with: matched to the curve, SHA-256 for RSA, none for EdDSA."""
    if isinstance(key, ec.EllipticCurvePublicKey):
        if key.curve.key_size >= 512:
            return hashes.SHA512()
        if key.curve.key_size >= 384:
            return hashes.SHA384()
        return hashes.SHA256()
    if isinstance(key, ed448.Ed448PublicKey | ed25519.Ed25519PublicKey):
        return None
    return hashes.SHA256()


def signature_padding(key: CertificatePublicKeyTypes, rsa_pss: bool) -> padding.AsymmetricPadding | None:
    """RSA-PSS when the CA is configured for it (OCPP A00.FR.505 recommends it), else PKCS#1 v1.5."""
    if not isinstance(key, rsa.RSAPublicKey):
        return None
    if rsa_pss:
        return padding.PSS(mgf=padding.MGF1(hashes.SHA256()), salt_length=padding.PSS.DIGEST_LENGTH)
    return padding.PKCS1v15()


def sign_with_key(
    key: CertificateIssuerPrivateKeyTypes,
    data: bytes,
    *,
    rsa_pss: bool,
    prehashed: hashes.HashAlgorithm | None = None,
) -> bytes:
    """Sign ``data`` (or, with ``prehashed``, a digest of it) as a CA with this key would.

    The digest is the key's natural one (:func:`signature_hash`); a prehashed digest must use
    that algorithm or be SHA-256 for RSA. EdDSA signs messages, never digests (RFC 8032).
    """
    public = key.public_key()
    if isinstance(key, ed448.Ed448PrivateKey | ed25519.Ed25519PrivateKey):
        if prehashed is not None:
            raise InvalidInput("an EdDSA key signs whole messages; it cannot sign a precomputed digest")
        return key.sign(data)
    digest: hashes.HashAlgorithm | asym_utils.Prehashed | None = signature_hash(public)
    if prehashed is not None:
        digest = asym_utils.Prehashed(prehashed)
    assert digest is not None
    if isinstance(key, ec.EllipticCurvePrivateKey):
        return key.sign(data, ec.ECDSA(digest))
    if isinstance(key, rsa.RSAPrivateKey):
        pad = signature_padding(public, rsa_pss)
        assert isinstance(pad, padding.PSS | padding.PKCS1v15)
        return key.sign(data, pad, digest)
    raise InvalidInput(f"cannot sign with a {type(key).__name__}")
