"""The provisioning hot path's caches: what they keep, and that they answer as a fresh parse or check would."""

from __future__ import annotations

import datetime as dt

from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import Encoding
from cryptography.x509.oid import NameOID

from pki.core import parsed
from pki.iso15118 import chains
from pki.iso15118.chains import ChainRejected, TrustStore, validate_path

NOW = dt.datetime(2026, 6, 1, tzinfo=dt.UTC)


def _certificate(
    subject: str, key: ec.EllipticCurvePrivateKey, issuer: str, signer: ec.EllipticCurvePrivateKey, *, ca: bool
) -> x509.Certificate:
    return (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, subject)]))
        .issuer_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, issuer)]))
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(NOW - dt.timedelta(days=1))
        .not_valid_after(NOW + dt.timedelta(days=30))
        .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
        .sign(signer, hashes.SHA256())
    )


def _root_and_leaf() -> tuple[x509.Certificate, x509.Certificate, ec.EllipticCurvePrivateKey]:
    root_key, leaf_key = ec.generate_private_key(ec.SECP256R1()), ec.generate_private_key(ec.SECP256R1())
    root = _certificate("Cache Test Root", root_key, "Cache Test Root", root_key, ca=True)
    leaf = _certificate("Cache Test Leaf", leaf_key, "Cache Test Root", root_key, ca=False)
    return root, leaf, root_key


def test_the_signature_cache_keeps_the_verdict_under_the_two_certificates_der_and_no_parsed_certificate() -> None:
    root, leaf, _ = _root_and_leaf()
    assert validate_path(leaf, (), TrustStore((root,)), NOW, what="the leaf") == [leaf, root]
    key = (leaf.public_bytes(Encoding.DER), root.public_bytes(Encoding.DER))
    assert chains._links[key] is True
    # Bytes only: nothing in the cache is a graph of Python objects for the collector to walk.
    assert all(type(part) is bytes for pair in chains._links for part in pair)
    # A second check of the same link answers the same from the cache.
    again = x509.load_der_x509_certificate(key[0])
    assert validate_path(again, (), TrustStore((root,)), NOW, what="the leaf") == [again, root]


def test_a_forged_link_is_refused_every_time_also_from_the_cache() -> None:
    _, leaf, _ = _root_and_leaf()
    impostor_key = ec.generate_private_key(ec.SECP256R1())
    impostor = _certificate("Cache Test Root", impostor_key, "Cache Test Root", impostor_key, ca=True)
    for _ in range(2):
        try:
            validate_path(leaf, (), TrustStore((impostor,)), NOW, what="the leaf")
        except ChainRejected as exc:
            assert "no trusted issuer" in exc.message
        else:
            raise AssertionError("a leaf the anchor did not sign was accepted")
    assert chains._links[(leaf.public_bytes(Encoding.DER), impostor.public_bytes(Encoding.DER))] is False


def test_the_signature_cache_is_bounded_and_drops_the_least_recent_link() -> None:
    root, _, root_key = _root_and_leaf()
    issuer_der = root.public_bytes(Encoding.DER)
    fillers = [(index.to_bytes(4, "big"), issuer_der) for index in range(chains._LINKS_MAX)]
    saved = list(chains._links.items())
    chains._links.clear()
    try:
        for filler in fillers:
            chains._links[filler] = True
        leaf_key = ec.generate_private_key(ec.SECP256R1())
        leaf = _certificate("Cache Test Leaf 2", leaf_key, "Cache Test Root", root_key, ca=False)
        validate_path(leaf, (), TrustStore((root,)), NOW, what="the leaf")
        assert len(chains._links) == chains._LINKS_MAX
        assert fillers[0] not in chains._links
        assert (leaf.public_bytes(Encoding.DER), issuer_der) in chains._links
    finally:
        chains._links.clear()
        chains._links.update(saved)


def test_a_parsed_certificate_is_shared_per_der_and_equals_a_fresh_parse() -> None:
    root, _, _ = _root_and_leaf()
    der = root.public_bytes(Encoding.DER)
    first = parsed.certificate(der)
    assert parsed.certificate(bytes(bytearray(der))) is first  # equal bytes, another object: the same entry
    assert first == x509.load_der_x509_certificate(der)
