"""The ``KeyStore`` / ``Signer`` protocols every key backend implements.

A backend creates keys under a stable ``key_id`` and hands out a :class:`Signer` that signs
certificates and CRLs without ever giving the private key to its caller; the PKCS#11 backend
keeps keys inside the token, the file backend keeps them encrypted at rest.
"""

from __future__ import annotations

import re
from typing import Protocol

from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric.types import CertificatePublicKeyTypes
from cryptography.x509 import ocsp

from pki.core.errors import InvalidInput

__all__ = ["KeyStore", "Signer", "check_key_id"]

_KEY_ID = re.compile(r"^[a-z0-9][a-z0-9._-]{0,127}$")


def check_key_id(key_id: str) -> str:
    if not _KEY_ID.match(key_id):
        raise InvalidInput(f"invalid key id {key_id!r} (lower-case letters, digits, '.', '_', '-')")
    return key_id


class Signer(Protocol):
    """Signs with one private key that stays inside its backend."""

    @property
    def key_id(self) -> str: ...

    def public_key(self) -> CertificatePublicKeyTypes: ...

    def sign_certificate(self, builder: x509.CertificateBuilder, *, rsa_pss: bool) -> x509.Certificate: ...

    def sign_crl(
        self, builder: x509.CertificateRevocationListBuilder, *, rsa_pss: bool
    ) -> x509.CertificateRevocationList: ...

    def sign_ocsp_response(self, builder: ocsp.OCSPResponseBuilder) -> ocsp.OCSPResponse:
        """Sign with the key's natural digest; RSA keys use PKCS#1 v1.5 (the builder offers no PSS)."""
        ...

    def sign_bytes(self, data: bytes, *, rsa_pss: bool) -> bytes:
        """A signature over ``data`` with the key's natural digest (DER ECDSA, raw EdDSA, RSA)."""
        ...

    def sign_digest(self, digest: bytes, algorithm: hashes.HashAlgorithm, *, rsa_pss: bool) -> bytes:
        """A signature over a digest computed by the caller (streamed input); EdDSA keys cannot do this."""
        ...


class KeyStore(Protocol):
    """Creates and finds keys by id. ``generate`` never replaces an existing key."""

    @property
    def backend(self) -> str: ...

    def generate(self, key_id: str, algorithm: str) -> Signer: ...

    def load(self, key_id: str) -> Signer: ...

    def exists(self, key_id: str) -> bool: ...
