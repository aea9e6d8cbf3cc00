"""Contract private key encryption for the vehicle, ISO 15118-2 [V2G2-818] / [V2G2-824].

The CPS sends the freshly made contract key to the EV encrypted under a key agreed by ECDH
between an ephemeral P-256 key (whose public point travels as ``DHpublickey``) and the EV's
own key: the OEM provisioning certificate's on installation, the contract certificate being
replaced on update. The session key is the single-step concatenation KDF of NIST SP 800-56A
with SHA-256 and OtherInfo = AlgorithmID 0x01 ‖ PartyUInfo 'U' ‖ PartyVInfo 'V', cut to 128
bits; the 32-byte private scalar is encrypted with AES-128-CBC, no padding, and the field is
``IV ‖ ciphertext`` (48 bytes, ``privateKeyType`` maxLength 48).

Both directions live here: :func:`encrypt_contract_key` for the CPS and
:func:`decrypt_contract_key` for a car (the simulator and tests).
"""

from __future__ import annotations

import os
from dataclasses import dataclass

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from cryptography.hazmat.primitives.kdf.concatkdf import ConcatKDFHash
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from pki.core.errors import InvalidInput

__all__ = [
    "DH_PUBLIC_KEY_BYTES",
    "ENCRYPTED_KEY_BYTES",
    "WrappedContractKey",
    "decrypt_contract_key",
    "encrypt_contract_key",
    "session_key",
]

_CURVE = ec.SECP256R1()
_SCALAR_BYTES = 32
_IV_BYTES = 16
ENCRYPTED_KEY_BYTES = _IV_BYTES + _SCALAR_BYTES  # V2G_CI_MsgDataTypes.xsd privateKeyType maxLength 48
DH_PUBLIC_KEY_BYTES = 65  # dHpublickeyType maxLength 65: X9.62 uncompressed 04 ‖ X ‖ Y
_OTHER_INFO = b"\x01\x55\x56"  # [V2G2-818]: AlgorithmID 0x01, PartyUInfo "U", PartyVInfo "V"


@dataclass(frozen=True, slots=True)
class WrappedContractKey:
    """What the response carries: ``DHpublickey`` and ``ContractSignatureEncryptedPrivateKey``."""

    dh_public_key: bytes  # 65 bytes
    encrypted_private_key: bytes  # 48 bytes: IV ‖ AES-128-CBC(scalar)


def session_key(private_key: ec.EllipticCurvePrivateKey, peer: ec.EllipticCurvePublicKey) -> bytes:
    """The 16-byte AES key both sides derive from the ECDH shared secret (x-coordinate, 32 bytes)."""
    _require_p256(peer, "the peer key")
    shared = private_key.exchange(ec.ECDH(), peer)
    return ConcatKDFHash(hashes.SHA256(), 16, otherinfo=_OTHER_INFO).derive(shared)


def encrypt_contract_key(
    contract_key: ec.EllipticCurvePrivateKey,
    peer: ec.EllipticCurvePublicKey,
    *,
    ephemeral_key: ec.EllipticCurvePrivateKey | None = None,
    iv: bytes | None = None,
) -> WrappedContractKey:
    """Encrypt ``contract_key`` for the holder of ``peer``'s private key.

    ``ephemeral_key`` and ``iv`` exist for known-answer tests only; production calls leave them
    out so both are fresh and random for every response.
    """
    _require_p256(contract_key.public_key(), "the contract key")
    ephemeral = ephemeral_key if ephemeral_key is not None else ec.generate_private_key(_CURVE)
    iv = iv if iv is not None else os.urandom(_IV_BYTES)
    if len(iv) != _IV_BYTES:
        raise InvalidInput(f"the IV must be {_IV_BYTES} bytes, not {len(iv)}")
    key = session_key(ephemeral, peer)
    scalar = contract_key.private_numbers().private_value.to_bytes(_SCALAR_BYTES, "big")
    encryptor = Cipher(algorithms.AES(key), modes.CBC(iv)).encryptor()
    ciphertext = encryptor.update(scalar) + encryptor.finalize()
    point = ephemeral.public_key().public_bytes(Encoding.X962, PublicFormat.UncompressedPoint)
    return WrappedContractKey(dh_public_key=point, encrypted_private_key=iv + ciphertext)


def decrypt_contract_key(
    wrapped: WrappedContractKey, own_key: ec.EllipticCurvePrivateKey
) -> ec.EllipticCurvePrivateKey:
    """The car's side: recover the contract key with the OEM (install) or old contract (update) key."""
    if len(wrapped.encrypted_private_key) != ENCRYPTED_KEY_BYTES:
        raise InvalidInput(
            f"ContractSignatureEncryptedPrivateKey must be {ENCRYPTED_KEY_BYTES} bytes, "
            f"not {len(wrapped.encrypted_private_key)}"
        )
    if len(wrapped.dh_public_key) != DH_PUBLIC_KEY_BYTES or wrapped.dh_public_key[0] != 0x04:
        raise InvalidInput("DHpublickey must be an uncompressed P-256 point of 65 bytes starting 04")
    try:
        peer = ec.EllipticCurvePublicKey.from_encoded_point(_CURVE, wrapped.dh_public_key)
    except ValueError as exc:
        raise InvalidInput(f"DHpublickey is not a point on P-256: {exc}") from None
    key = session_key(own_key, peer)
    iv, ciphertext = wrapped.encrypted_private_key[:_IV_BYTES], wrapped.encrypted_private_key[_IV_BYTES:]
    decryptor = Cipher(algorithms.AES(key), modes.CBC(iv)).decryptor()
    scalar = int.from_bytes(decryptor.update(ciphertext) + decryptor.finalize(), "big")
    try:
        return ec.derive_private_key(scalar, _CURVE)
    except ValueError:
        raise InvalidInput("the decrypted contract key is not a valid P-256 scalar (wrong key?)") from None


def _require_p256(public_key: object, what: str) -> None:
    if not isinstance(public_key, ec.EllipticCurvePublicKey) or not isinstance(public_key.curve, ec.SECP256R1):
        raise InvalidInput(f"{what} must be a P-256 EC key (ISO 15118-2 [V2G2-818])")
