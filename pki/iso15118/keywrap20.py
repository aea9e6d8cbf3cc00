"""Contract private key encryption for the vehicle, ISO 15118-20 §7.9.2.5.2 (EVCC without TPM 2.0).

The SA (here the CPS side of evpki) is party U, the vehicle party V ([V2G20-2535]):

1. an ephemeral key pair per response, on the curve of the car: P-521, or X448 when the car's OEM
   provisioning certificate is Ed448 -- then the static key is the certificate's *alternate* X448
   public key ([V2G20-2534]);
2. ``Z`` = the ECDH shared secret (P-521: the 66-byte x-coordinate, SP 800-56A C(1e, 1s, ECC CDH);
   X448: RFC 7748's 56 bytes);
3. session key = the single-step concatenation KDF of NIST SP 800-56A with **SHA-512**, one round,
   OtherInfo = AlgorithmID 0x01 ‖ PartyUInfo 'U' ‖ PartyVInfo 'V' (the -2 layout), cut to **256 bits**
   ([V2G20-2535]);
4. AES-GCM-256 (NIST SP 800-38D) with a random 96-bit IV and a 128-bit tag ([V2G20-2494]), AAD =
   the PCID (upper-case letters and digits, no separators) ‖ the contract certificate's SKI as
   upper-case hex, both as ASCII ([V2G20-2492]);
5. the field is ``IV(12) ‖ ciphertext ‖ tag(16)`` ([V2G20-2499], [V2G20-2502]):
   ``SECP521_EncryptedPrivateKey`` = 12 + 66 (the 521-bit scalar left-padded with 7 zero bits,
   big-endian, [V2G20-2497]) + 16 = 94 bytes; ``X448_EncryptedPrivateKey`` = 12 + 56 + 16 = 84 bytes;
6. ``DHPublicKey`` is the ephemeral public key: the uncompressed P-521 point (133 bytes) or the raw
   56-byte X448 key, without filler ([V2G20-2495]).

Verified against the public excerpts of the standard quoted in reference iso15118.md §2.5-2.6
and the requirement texts found by code search (2492, 2494, 2495, 2497-2502, 2534, 2535); not
verified against a licensed copy. One point the text leaves open: it calls the key in
``X448_EncryptedPrivateKey`` "the 448-bit private key corresponding to the contract certificate",
which for [V2G20-2319] is an Ed448 certificate -- but an Ed448 private key (RFC 8032) is 57 bytes.
evpki makes Ed448 contract keys whose 57th byte is zero (448 random bits) and carries the 56 others;
the car appends the zero byte. [unverified: how other implementations read it.]

:func:`encrypt_contract_key` is the CPS side; :func:`decrypt_contract_key` the car's (the simulator
and the tests; the independent car in ``tests/interop/car20.py`` does not use it).
"""

from __future__ import annotations

import os
from dataclasses import dataclass

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, ed448, x448
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.concatkdf import ConcatKDFHash
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from pki.core.errors import InvalidInput
from pki.iso15118.messages20 import ECDHCurve, EncryptedKeyType

__all__ = [
    "DH_PUBLIC_KEY_BYTES",
    "ENCRYPTED_KEY_BYTES",
    "AgreementKey",
    "ContractKey",
    "WrappedContractKey",
    "additional_data",
    "decrypt_contract_key",
    "encrypt_contract_key",
    "new_contract_key",
    "session_key",
]

ContractKey = ec.EllipticCurvePrivateKey | ed448.Ed448PrivateKey
AgreementKey = ec.EllipticCurvePublicKey | x448.X448PublicKey

_IV_BYTES = 12
_TAG_BYTES = 16
_P521_SCALAR_BYTES = 66  # 521 bits left-padded to 528 ([V2G20-2497])
_X448_KEY_BYTES = 56
ENCRYPTED_KEY_BYTES = {
    ECDHCurve.SECP521: _IV_BYTES + _P521_SCALAR_BYTES + _TAG_BYTES,  # 94
    ECDHCurve.X448: _IV_BYTES + _X448_KEY_BYTES + _TAG_BYTES,  # 84
}
DH_PUBLIC_KEY_BYTES = {ECDHCurve.SECP521: 133, ECDHCurve.X448: 56}
KEY_ELEMENT = {ECDHCurve.SECP521: EncryptedKeyType.SECP521, ECDHCurve.X448: EncryptedKeyType.X448}
_OTHER_INFO = b"\x01\x55\x56"  # [V2G20-2535]: AlgorithmID 0x01, PartyUInfo "U", PartyVInfo "V"


@dataclass(frozen=True, slots=True)
class WrappedContractKey:
    """What SignedInstallationData carries: ECDHCurve, DHPublicKey and the encrypted key element."""

    curve: ECDHCurve
    dh_public_key: bytes
    encrypted_private_key: bytes

    @property
    def key_type(self) -> EncryptedKeyType:
        return KEY_ELEMENT[self.curve]


def additional_data(pcid: str, ski: bytes) -> bytes:
    """[V2G20-2492]: PCID (upper case, no separators) ‖ SKI as upper-case hex, as ASCII."""
    clean = pcid.replace("-", "").upper()
    if not clean.isascii() or not clean.isalnum():
        raise InvalidInput(f"the PCID {pcid!r} must be letters and digits for the AAD")
    return clean.encode("ascii") + ski.hex().upper().encode("ascii")


def session_key(shared_secret: bytes) -> bytes:
    """The 32-byte AES key from the ECDH shared secret ([V2G20-2535])."""
    return ConcatKDFHash(hashes.SHA512(), 32, otherinfo=_OTHER_INFO).derive(shared_secret)


def new_contract_key(curve: ECDHCurve) -> ContractKey:
    """A contract key for a car on ``curve``: P-521, or Ed448 with a zero last byte (see the module docstring)."""
    if curve is ECDHCurve.SECP521:
        return ec.generate_private_key(ec.SECP521R1())
    return ed448.Ed448PrivateKey.from_private_bytes(os.urandom(_X448_KEY_BYTES) + b"\x00")


def _curve_of(peer: object) -> ECDHCurve:
    if isinstance(peer, ec.EllipticCurvePublicKey) and isinstance(peer.curve, ec.SECP521R1):
        return ECDHCurve.SECP521
    if isinstance(peer, x448.X448PublicKey):
        return ECDHCurve.X448
    raise InvalidInput("the vehicle's agreement key must be a P-521 or an X448 key (ISO 15118-20 [V2G20-2535])")


def _plaintext(contract_key: ContractKey, curve: ECDHCurve) -> bytearray:
    if curve is ECDHCurve.SECP521:
        if not isinstance(contract_key, ec.EllipticCurvePrivateKey) or not isinstance(contract_key.curve, ec.SECP521R1):
            raise InvalidInput("a SECP521 installation carries a P-521 contract key")
        return bytearray(contract_key.private_numbers().private_value.to_bytes(_P521_SCALAR_BYTES, "big"))
    if not isinstance(contract_key, ed448.Ed448PrivateKey):
        raise InvalidInput("an X448 installation carries an Ed448 contract key")
    raw = contract_key.private_bytes_raw()
    if raw[-1] != 0:
        raise InvalidInput("this Ed448 contract key does not fit the 56 bytes of X448_EncryptedPrivateKey")
    return bytearray(raw[:_X448_KEY_BYTES])


def encrypt_contract_key(
    contract_key: ContractKey,
    peer: AgreementKey,
    *,
    pcid: str,
    ski: bytes,
    ephemeral_key: ec.EllipticCurvePrivateKey | x448.X448PrivateKey | None = None,
    iv: bytes | None = None,
) -> WrappedContractKey:
    """Encrypt ``contract_key`` for the holder of ``peer``; ``ski`` is the contract certificate's key identifier.

    ``ephemeral_key`` and ``iv`` exist for known-answer tests only; production calls leave them out.
    """
    curve = _curve_of(peer)
    iv = iv if iv is not None else os.urandom(_IV_BYTES)
    if len(iv) != _IV_BYTES:
        raise InvalidInput(f"the IV must be {_IV_BYTES} bytes, not {len(iv)}")
    plaintext = _plaintext(contract_key, curve)
    key = bytearray()
    try:
        if curve is ECDHCurve.SECP521:
            assert isinstance(peer, ec.EllipticCurvePublicKey)
            ephemeral_ec = ephemeral_key if ephemeral_key is not None else ec.generate_private_key(ec.SECP521R1())
            if not isinstance(ephemeral_ec, ec.EllipticCurvePrivateKey):
                raise InvalidInput("a SECP521 installation needs a P-521 ephemeral key")
            shared = ephemeral_ec.exchange(ec.ECDH(), peer)
            point = ephemeral_ec.public_key().public_bytes(Encoding.X962, PublicFormat.UncompressedPoint)
        else:
            assert isinstance(peer, x448.X448PublicKey)
            ephemeral_x = ephemeral_key if ephemeral_key is not None else x448.X448PrivateKey.generate()
            if not isinstance(ephemeral_x, x448.X448PrivateKey):
                raise InvalidInput("an X448 installation needs an X448 ephemeral key")
            shared = ephemeral_x.exchange(peer)
            point = ephemeral_x.public_key().public_bytes_raw()
        key = bytearray(session_key(shared))
        sealed = AESGCM(bytes(key)).encrypt(iv, bytes(plaintext), additional_data(pcid, ski))
    finally:
        # [V2G20-2496]: nothing of the key survives the call. Python cannot promise the copies the
        # libraries made are wiped; the buffers evpki holds are.
        plaintext[:] = bytes(len(plaintext))
        key[:] = bytes(len(key))
    return WrappedContractKey(curve, point, iv + sealed)


def decrypt_contract_key(
    wrapped: WrappedContractKey,
    own_key: ec.EllipticCurvePrivateKey | x448.X448PrivateKey,
    *,
    pcid: str,
    ski: bytes,
) -> ContractKey:
    """The car's side: recover the contract key with its OEM provisioning (or alternate X448) key."""
    curve = wrapped.curve
    if len(wrapped.encrypted_private_key) != ENCRYPTED_KEY_BYTES[curve]:
        raise InvalidInput(
            f"{KEY_ELEMENT[curve].value} must be {ENCRYPTED_KEY_BYTES[curve]} bytes, "
            f"not {len(wrapped.encrypted_private_key)}"
        )
    if len(wrapped.dh_public_key) != DH_PUBLIC_KEY_BYTES[curve]:
        raise InvalidInput(f"DHPublicKey must be {DH_PUBLIC_KEY_BYTES[curve]} bytes for {curve.value}")
    try:
        if curve is ECDHCurve.SECP521:
            if not isinstance(own_key, ec.EllipticCurvePrivateKey):
                raise InvalidInput("SECP521 needs the car's P-521 key")
            peer_ec = ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP521R1(), wrapped.dh_public_key)
            shared = own_key.exchange(ec.ECDH(), peer_ec)
        else:
            if not isinstance(own_key, x448.X448PrivateKey):
                raise InvalidInput("X448 needs the car's alternate X448 key")
            shared = own_key.exchange(x448.X448PublicKey.from_public_bytes(wrapped.dh_public_key))
    except ValueError as exc:
        raise InvalidInput(f"DHPublicKey is not a {curve.value} public key: {exc}") from None
    blob = wrapped.encrypted_private_key
    try:
        plain = AESGCM(session_key(shared)).decrypt(blob[:_IV_BYTES], blob[_IV_BYTES:], additional_data(pcid, ski))
    except InvalidTag:
        # [V2G20-2504]: a tag that does not verify invalidates the whole response.
        raise InvalidInput("the encrypted contract key does not authenticate (wrong key, PCID or SKI?)") from None
    if curve is ECDHCurve.SECP521:
        if plain[0] & 0xFE:  # [V2G20-2678]: the 7 padding bits are zero
            raise InvalidInput("the decrypted P-521 key has non-zero padding bits")
        try:
            return ec.derive_private_key(int.from_bytes(plain, "big"), ec.SECP521R1())
        except ValueError:
            raise InvalidInput("the decrypted contract key is not a valid P-521 scalar ([V2G20-2507])") from None
    return ed448.Ed448PrivateKey.from_private_bytes(plain + b"\x00")
