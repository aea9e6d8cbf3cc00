"""File key backend: one PKCS#8 file per key, always encrypted (PKCS#8, PBES2: PBKDF2-SHA256 600k, AES-256-CBC).

Files are created with mode 0600 in a 0700 directory and published with ``link()`` so that an
existing key is never overwritten, not even by two processes racing on ``evpki init``.
Decrypted keys are cached for the life of the process (decrypting costs a PBKDF2 run).
"""

from __future__ import annotations

import contextlib
import os
import threading
from collections.abc import Callable
from pathlib import Path

from asn1crypto import algos as asn1_algos
from asn1crypto import keys as asn1_keys
from asn1crypto import pem as asn1_pem
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric.types import (
    CertificateIssuerPrivateKeyTypes,
    CertificatePublicKeyTypes,
)
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from cryptography.hazmat.primitives.kdf.pbkdf2 import PBKDF2HMAC
from cryptography.hazmat.primitives.padding import PKCS7
from cryptography.x509 import ocsp

from pki.core.algorithms import generate_private_key, sign_with_key, signature_hash, signature_padding
from pki.core.errors import Conflict, NotFound, Unavailable
from pki.keys.base import check_key_id

__all__ = ["KDF_ITERATIONS", "FileKeyStore", "FileSigner", "encrypt_pkcs8"]

KDF_ITERATIONS = 600_000  # OWASP's 2023 figure for PBKDF2-HMAC-SHA256


def encrypt_pkcs8(key: CertificateIssuerPrivateKeyTypes, passphrase: bytes) -> bytes:
    """PEM ``ENCRYPTED PRIVATE KEY``: PBES2 (RFC 8018 §6.2) with PBKDF2-HMAC-SHA256 and AES-256-CBC.

    ``cryptography``'s ``BestAvailableEncryption`` uses only 2,048 PBKDF2 iterations for
    PKCS#8 and offers no way to raise them, so the envelope is assembled with asn1crypto
    around ``cryptography``'s own KDF and cipher; any PKCS#8 reader (OpenSSL included) opens it.
    """
    plain = key.private_bytes(
        serialization.Encoding.DER, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    salt, iv = os.urandom(16), os.urandom(16)
    derived = PBKDF2HMAC(algorithm=hashes.SHA256(), length=32, salt=salt, iterations=KDF_ITERATIONS).derive(passphrase)
    padder = PKCS7(128).padder()
    padded = padder.update(plain) + padder.finalize()
    encryptor = Cipher(algorithms.AES(derived), modes.CBC(iv)).encryptor()
    encrypted = encryptor.update(padded) + encryptor.finalize()
    envelope = asn1_keys.EncryptedPrivateKeyInfo(
        {
            "encryption_algorithm": {
                "algorithm": "pbes2",
                "parameters": {
                    "key_derivation_func": {
                        "algorithm": "pbkdf2",
                        "parameters": {
                            "salt": asn1_algos.Pbkdf2Salt(name="specified", value=salt),
                            "iteration_count": KDF_ITERATIONS,
                            "prf": {"algorithm": "sha256"},
                        },
                    },
                    "encryption_scheme": {"algorithm": "aes256_cbc", "parameters": iv},
                },
            },
            "encrypted_data": encrypted,
        }
    )
    return asn1_pem.armor("ENCRYPTED PRIVATE KEY", envelope.dump())


class FileSigner:
    """A signer over a decrypted in-memory key; never exposes the key object."""

    __slots__ = ("_key", "_key_id")

    def __init__(self, key_id: str, key: CertificateIssuerPrivateKeyTypes) -> None:
        self._key_id = key_id
        self._key = key

    @property
    def key_id(self) -> str:
        return self._key_id

    def public_key(self) -> CertificatePublicKeyTypes:
        return self._key.public_key()

    def sign_certificate(self, builder: x509.CertificateBuilder, *, rsa_pss: bool) -> x509.Certificate:
        public = self._key.public_key()
        return builder.sign(self._key, signature_hash(public), rsa_padding=signature_padding(public, rsa_pss))

    def sign_crl(
        self, builder: x509.CertificateRevocationListBuilder, *, rsa_pss: bool
    ) -> x509.CertificateRevocationList:
        public = self._key.public_key()
        return builder.sign(self._key, signature_hash(public), rsa_padding=signature_padding(public, rsa_pss))

    def sign_ocsp_response(self, builder: ocsp.OCSPResponseBuilder) -> ocsp.OCSPResponse:
        return builder.sign(self._key, signature_hash(self._key.public_key()))

    def sign_bytes(self, data: bytes, *, rsa_pss: bool) -> bytes:
        return sign_with_key(self._key, data, rsa_pss=rsa_pss)

    def sign_digest(self, digest: bytes, algorithm: hashes.HashAlgorithm, *, rsa_pss: bool) -> bytes:
        return sign_with_key(self._key, digest, rsa_pss=rsa_pss, prehashed=algorithm)

    def __repr__(self) -> str:
        return f"FileSigner(key_id={self._key_id!r})"


class FileKeyStore:
    backend = "file"

    def __init__(self, directory: Path, passphrase: bytes | Callable[[], bytes]) -> None:
        # A callable defers asking for the passphrase until a key is really used, so read-only
        # commands (listing CAs, showing certificates) work without it.
        self._dir = directory
        self._passphrase_source = passphrase
        self._cache: dict[str, FileSigner] = {}
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return f"FileKeyStore({str(self._dir)!r})"

    @property
    def _passphrase(self) -> bytes:
        source = self._passphrase_source
        return source() if callable(source) else source

    def _path(self, key_id: str) -> Path:
        return self._dir / f"{check_key_id(key_id)}.key.pem"

    def exists(self, key_id: str) -> bool:
        return self._path(key_id).exists()

    def generate(self, key_id: str, algorithm: str) -> FileSigner:
        path = self._path(key_id)
        if path.exists():
            raise Conflict(f"key {key_id!r} already exists; keys are never replaced")
        key = generate_private_key(algorithm)
        pem = encrypt_pkcs8(key, self._passphrase)
        self._publish(path, pem)
        signer = FileSigner(key_id, key)
        with self._lock:
            self._cache[key_id] = signer
        return signer

    def load(self, key_id: str) -> FileSigner:
        with self._lock:
            cached = self._cache.get(key_id)
        if cached is not None:
            return cached
        path = self._path(key_id)
        try:
            pem = path.read_bytes()
        except FileNotFoundError:
            raise NotFound(f"key {key_id!r} is not in the file key store {self._dir}") from None
        try:
            key = serialization.load_pem_private_key(pem, password=self._passphrase)
        except (ValueError, TypeError):
            raise Unavailable(f"cannot decrypt key {key_id!r}: wrong passphrase or damaged key file") from None
        signer = FileSigner(key_id, key)  # type: ignore[arg-type]
        with self._lock:
            self._cache[key_id] = signer
        return signer

    def _publish(self, path: Path, data: bytes) -> None:
        self._dir.mkdir(mode=0o700, parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.{os.getpid()}.{threading.get_ident()}.tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            with os.fdopen(fd, "wb") as handle:
                handle.write(data)
                handle.flush()
                os.fsync(handle.fileno())
            try:
                os.link(tmp, path)  # fails instead of replacing an existing key
            except FileExistsError:
                raise Conflict(f"key file {path.name} appeared concurrently; keys are never replaced") from None
        finally:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp)
        dir_fd = os.open(self._dir, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)
