"""ISO 15118-20 PKIs beside the -2 ones: the shipped hierarchy, the -20 profiles, openssl accepting every chain."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed448, x448

from pki import PKI, RequestIdentity
from pki.ca import ISO15118_20_HIERARCHY, CertificateFilter
from pki.ca.hierarchy import load_hierarchy, parse_hierarchy
from pki.core.errors import PolicyViolation
from tests.conftest import ORG, make_csr, requires_openssl, run_openssl
from tests.pki.iso15118.vehicles20 import ALT_KEY_OID, car20_csr, make_car20, new_emaid20

IDS20 = (
    "v2g20-root",
    "cpo20-sub1",
    "cpo20-sub2",
    "cps20-sub1",
    "cps20-sub2",
    "mo20-root",
    "mo20-sub1",
    "mo20-sub2",
    "oem20-root",
    "oem20-sub1",
    "oem20-sub2",
)


def _der(certificate: x509.Certificate) -> bytes:
    return certificate.public_bytes(serialization.Encoding.DER)


def _pem(certificates: list[x509.Certificate]) -> bytes:
    return b"".join(c.public_bytes(serialization.Encoding.PEM) for c in certificates)


def test_the_shipped_file_is_the_default_plus_iso15118_20() -> None:
    default = load_hierarchy(None, ORG)
    with20 = load_hierarchy(ISO15118_20_HIERARCHY, ORG)
    assert {k: v for k, v in with20.pkis.items() if k in default.pkis} == default.pkis
    assert {k: v.standard for k, v in with20.pkis.items() if k not in default.pkis} == {
        "v2g20": "iso15118-20",
        "mo20": "iso15118-20",
        "oem20": "iso15118-20",
    }
    assert [c for c in with20.cas if c.pki.standard != "iso15118-20"] == list(default.cas)
    assert tuple(c.id for c in with20.cas if c.pki.standard == "iso15118-20") == IDS20
    assert [leaf for leaf in with20.leaves if leaf.label != "cps20-leaf"] == list(default.leaves)


def _openssl_verify(leaf: x509.Certificate, chain: list[x509.Certificate], tmp_path: Path) -> None:
    root, untrusted = chain[-1], chain[:-1]
    (tmp_path / "root.pem").write_bytes(_pem([root]))
    (tmp_path / "untrusted.pem").write_bytes(_pem(untrusted) if untrusted else _pem([root]))
    (tmp_path / "leaf.pem").write_bytes(_pem([leaf]))
    result = run_openssl(
        "verify",
        "-x509_strict",
        "-CAfile",
        str(tmp_path / "root.pem"),
        "-untrusted",
        str(tmp_path / "untrusted.pem"),
        str(tmp_path / "leaf.pem"),
    )
    assert result.returncode == 0, result.stdout + result.stderr


def _check_20(certificate: x509.Certificate) -> None:
    assert len(_der(certificate)) <= 1600
    ski = certificate.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value.digest
    assert len(ski) == 8  # the AAD carries it as 16 hex characters ([V2G20-2492])
    assert not any(isinstance(e.value, x509.CRLDistributionPoints) for e in certificate.extensions)


@requires_openssl
def test_openssl_verifies_every_iso15118_20_ca_chain(pki20: PKI, tmp_path: Path) -> None:
    for ca_id in IDS20:
        chain = pki20.cas.chain(ca_id)
        _check_20(chain[0])
        key = chain[0].public_key()
        assert isinstance(key, ec.EllipticCurvePublicKey) and key.curve.name == "secp521r1"
        assert chain[0].signature_hash_algorithm is not None and chain[0].signature_hash_algorithm.name == "sha512"
        _openssl_verify(chain[0], chain[1:] or chain, tmp_path)


@requires_openssl
@pytest.mark.parametrize("curve", ["p521", "ed448"])
def test_openssl_verifies_iso15118_20_leaves(pki20: PKI, curve: str, tmp_path: Path) -> None:
    car = make_car20(pki20, curve)
    emaid = new_emaid20()
    key = ec.generate_private_key(ec.SECP521R1()) if curve == "p521" else ed448.Ed448PrivateKey.generate()
    contract_csr, _ = make_csr(emaid, organization=None, dc="MO", key=key)
    secc_csr, _ = make_csr("DE*ABC*S20*1", organization=ORG, country="DE", dc="CPO", key=key)
    contract = pki20.certificates.issue(
        profile="contract", csr=contract_csr, identity=RequestIdentity(emaid=emaid), ca_id="mo20-sub2"
    )
    secc = pki20.certificates.issue(
        profile="secc", csr=secc_csr, identity=RequestIdentity(secc_id="DE*ABC*S20*1"), ca_id="cpo20-sub2"
    )
    leaves = [
        (car.certificate, "oem20-sub2"),
        (x509.load_pem_x509_certificate(contract.certificate.certificate_pem.encode()), "mo20-sub2"),
        (x509.load_pem_x509_certificate(secc.certificate.certificate_pem.encode()), "cpo20-sub2"),
    ]
    for leaf, issuer in leaves:
        _check_20(leaf)
        usage = leaf.extensions.get_extension_for_class(x509.KeyUsage).value
        assert usage.digital_signature
        # RFC 9295: an Ed448 key signs only; a P-521 contract/OEM/SECC key also agrees keys.
        assert usage.key_agreement is (curve == "p521")
        _openssl_verify(leaf, pki20.cas.chain(issuer), tmp_path)
    (cps,) = pki20.certificates.list(CertificateFilter(ca_id="cps20-sub2", profile="cps-leaf"))
    cps_leaf = x509.load_pem_x509_certificate(cps.certificate_pem.encode())
    _check_20(cps_leaf)
    _openssl_verify(cps_leaf, pki20.cas.chain("cps20-sub2"), tmp_path)


def test_an_ed448_oem_certificate_carries_the_alternate_x448_key(pki20: PKI) -> None:
    car = make_car20(pki20, "ed448")
    extension = car.certificate.extensions.get_extension_for_oid(ALT_KEY_OID)
    assert not extension.critical
    alternate = serialization.load_der_public_key(extension.value.value)  # type: ignore[attr-defined]
    assert isinstance(alternate, x448.X448PublicKey)
    assert alternate.public_bytes_raw() == car.agreement_key.public_key().public_bytes_raw()
    p521 = make_car20(pki20, "p521")
    with pytest.raises(x509.ExtensionNotFound):
        p521.certificate.extensions.get_extension_for_oid(ALT_KEY_OID)


def test_alternate_key_rules(pki20: PKI) -> None:
    pcid = "WTW000000000000999"
    csr, key, _ = car20_csr(pcid, "ed448")
    subject = x509.load_pem_x509_csr(csr.encode()).subject
    bare = x509.CertificateSigningRequestBuilder().subject_name(subject).sign(key, None)  # type: ignore[arg-type]
    with pytest.raises(PolicyViolation, match="alternate public key"):
        pki20.certificates.issue(
            profile="oem-provisioning",
            csr=bare.public_bytes(serialization.Encoding.PEM),
            identity=RequestIdentity(pcid=pcid),
            ca_id="oem20-sub2",
        )
    wrong = ec.generate_private_key(ec.SECP521R1()).public_key()
    spki = wrong.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    bad = (
        x509.CertificateSigningRequestBuilder()
        .subject_name(subject)
        .add_extension(x509.UnrecognizedExtension(ALT_KEY_OID, spki), critical=False)
        .sign(key, None)  # type: ignore[arg-type]
    )
    with pytest.raises(PolicyViolation, match="must be an X448 key"):
        pki20.certificates.issue(
            profile="oem-provisioning",
            csr=bad.public_bytes(serialization.Encoding.PEM),
            identity=RequestIdentity(pcid=pcid),
            ca_id="oem20-sub2",
        )


def test_iso15118_20_refuses_p256_leaves(pki20: PKI) -> None:
    csr, _ = make_csr(new_emaid20(), organization=None, dc="MO")
    with pytest.raises(PolicyViolation, match="ec-p521 or ed448"):
        pki20.certificates.issue(
            profile="contract", csr=csr, identity=RequestIdentity(emaid=new_emaid20()), ca_id="mo20-sub2"
        )


@requires_openssl
def test_an_all_ed448_iso15118_20_pki(tmp_path: Path) -> None:
    """algorithm = "ed448" per PKI: the -20 sections alone, every CA on Ed448, openssl accepts the chains."""
    from tests.conftest import database_url, drop_database, make_settings

    text = ISO15118_20_HIERARCHY.read_text()
    spec = parse_hierarchy(text.replace('algorithm = "ec-p521"', 'algorithm = "ed448"'), ORG)
    only20 = dataclasses.replace(
        spec,
        pkis={k: v for k, v in spec.pkis.items() if v.standard == "iso15118-20"},
        cas=tuple(c for c in spec.cas if c.pki.standard == "iso15118-20"),
        leaves=tuple(leaf for leaf in spec.leaves if leaf.label == "cps20-leaf"),
    )
    from pki.ca.bootstrap import init_hierarchy

    url, name = database_url(tmp_path)
    pki = PKI.open(make_settings(tmp_path, url))
    try:
        init_hierarchy(pki._ctx, dataclasses.replace(only20, source=""), "test")
        for ca_id in IDS20:
            chain = pki.cas.chain(ca_id)
            assert isinstance(chain[0].public_key(), ed448.Ed448PublicKey)
            _check_20(chain[0])
            _openssl_verify(chain[0], chain[1:] or chain, tmp_path)
        car = make_car20(pki, "ed448")
        _openssl_verify(car.certificate, pki.cas.chain("oem20-sub2"), tmp_path)
    finally:
        pki.close()
        drop_database(name)
