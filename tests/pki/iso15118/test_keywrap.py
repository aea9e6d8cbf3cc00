"""Contract-key encryption: the known-answer vector of reference/iso15118.md §2.3, recomputed
independently with hashlib, and decrypt-what-was-encrypted for install and update peers."""

from __future__ import annotations

import hashlib

import pytest
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from pki.core.errors import InvalidInput
from pki.iso15118.keywrap import WrappedContractKey, decrypt_contract_key, encrypt_contract_key, session_key

OEM = ec.derive_private_key(int.from_bytes(b"\x11" * 32, "big"), ec.SECP256R1())
EPHEMERAL = ec.derive_private_key(int.from_bytes(b"\x22" * 32, "big"), ec.SECP256R1())
CONTRACT = ec.derive_private_key(int.from_bytes(b"\x33" * 32, "big"), ec.SECP256R1())
IV = bytes(range(16))


def test_known_answer_vector() -> None:
    wrapped = encrypt_contract_key(CONTRACT, OEM.public_key(), ephemeral_key=EPHEMERAL, iv=IV)
    assert OEM.public_key().public_bytes(Encoding.X962, PublicFormat.UncompressedPoint).hex() == (
        "040217e617f0b6443928278f96999e69a23a4f2c152bdf6d6cdf66e5b80282d4ed"
        "194a7debcb97712d2dda3ca85aa8765a56f45fc758599652f2897c65306e5794"
    )
    assert wrapped.dh_public_key.hex() == (
        "04d65a93977caa3d1b081852ff57a79e465f1660577304baead505dd3a48589cf3"
        "50185e895372df6221ea3a137557e473fddb6755f05bd507c3c533fce9c91285"
    )
    assert wrapped.encrypted_private_key.hex() == (
        "000102030405060708090a0b0c0d0e0ff418f69bd6f0497a0e55fcca0d8dd0ad9b69c89071ce6f2efbbde7fed706d155"
    )


def test_session_key_matches_a_plain_hashlib_kdf() -> None:
    z = EPHEMERAL.exchange(ec.ECDH(), OEM.public_key())
    assert z.hex() == "ccfc261f58193c98ca4ad4a53bbac6f0ee29bc4d48438090446908622ca79af6"
    by_hand = hashlib.sha256(b"\x00\x00\x00\x01" + z + b"\x01\x55\x56").digest()[:16]
    assert session_key(EPHEMERAL, OEM.public_key()) == by_hand == bytes.fromhex("7178a38694ce5bf8a6a20df6dae3ac94")


@pytest.mark.parametrize("peer_name", ["oem-provisioning (install)", "old contract (update)"])
def test_the_peer_decrypts_a_fresh_random_wrap(peer_name: str) -> None:
    peer = ec.generate_private_key(ec.SECP256R1())
    contract = ec.generate_private_key(ec.SECP256R1())
    first = encrypt_contract_key(contract, peer.public_key())
    second = encrypt_contract_key(contract, peer.public_key())
    assert first.dh_public_key != second.dh_public_key  # fresh ephemeral key and IV every time
    assert first.encrypted_private_key[:16] != second.encrypted_private_key[:16]
    recovered = decrypt_contract_key(first, peer)
    assert recovered.private_numbers() == contract.private_numbers()


def test_a_small_scalar_is_left_padded_to_32_bytes() -> None:
    contract = ec.derive_private_key(5, ec.SECP256R1())
    wrapped = encrypt_contract_key(contract, OEM.public_key())
    assert len(wrapped.encrypted_private_key) == 48
    assert decrypt_contract_key(wrapped, OEM).private_numbers().private_value == 5


def test_only_p256_peers_are_accepted() -> None:
    with pytest.raises(InvalidInput, match="P-256"):
        encrypt_contract_key(CONTRACT, ec.generate_private_key(ec.SECP384R1()).public_key())


@pytest.mark.parametrize(
    ("dh", "encrypted", "message"),
    [
        (b"\x04" + b"\x00" * 64, b"\x00" * 48, "not a point"),
        (b"\x02" + b"\x00" * 32, b"\x00" * 48, "uncompressed"),
        (b"\x04" * 65, b"\x00" * 47, "48 bytes"),
    ],
)
def test_malformed_wraps_are_refused(dh: bytes, encrypted: bytes, message: str) -> None:
    with pytest.raises(InvalidInput, match=message):
        decrypt_contract_key(WrappedContractKey(dh, encrypted), OEM)
