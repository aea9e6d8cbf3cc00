"""The firmware signature scheme: what is signed and with which algorithm.

The scheme is SHA-256 over the whole file (OCPP 2.0.1 L01.FR.04), then RSASSA-PSS (MGF1-SHA256,
salt = 32 octets) for an RSA signer or ECDSA (DER) for an EC signer; ``openssl dgst -sha256
-verify`` checks both. L01.FR.04 names RSA-PSS or "ECSchnorr"; ECDSA is what stations implement
in practice, so agree the scheme with each manufacturer (reference/ocpp.md §4).

This module owns the SHA-256 of a firmware file read as a stream of chunks -- the file is never
held in memory -- and the name of the scheme a signing key uses (none for a key it cannot use).
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable

from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.asymmetric.types import CertificatePublicKeyTypes

from pki.core.errors import InvalidInput

__all__ = ["firmware_digest", "signature_algorithm"]

_RSA_PSS_SHA256 = "rsassa-pss-sha256"
_ECDSA_SHA256 = "ecdsa-sha256"


def signature_algorithm(public_key: CertificatePublicKeyTypes) -> str | None:
    if isinstance(public_key, rsa.RSAPublicKey):
        return _RSA_PSS_SHA256
    if isinstance(public_key, ec.EllipticCurvePublicKey):
        return _ECDSA_SHA256
    return None


def firmware_digest(chunks: Iterable[bytes], max_bytes: int) -> tuple[bytes, int]:
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
