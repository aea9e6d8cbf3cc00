"""OCPP 2.1 and ISO 15118-20 SECC certificates: SignCertificate(V2G20Certificate), its renewal trigger,
and the -20 roots (OEMRootCertificate among them) in a 2.1 station's root reconciliation."""

from __future__ import annotations

import datetime as dt
import itertools
from collections.abc import Iterator

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import Encoding
from cryptography.x509.oid import NameOID

from ocpp_bridge.core import CertificateService
from ocpp_bridge.status import cert_id_of
from pki import PKI
from tests.conftest import ORG, make_csr
from tests.ocpp_bridge.conftest import SECC_ID, chain_of

_numbers = itertools.count(1)


def _station(pki: PKI) -> str:
    n = next(_numbers)
    identity = f"CS-21-{n:04d}"
    pki.stations.add(identity=identity, serial=f"SN21{n:06d}")
    return identity


def _secc20_csr(common_name: str | None = SECC_ID) -> str:
    key = ec.generate_private_key(ec.SECP521R1())
    if common_name is None:
        subject = x509.Name([x509.NameAttribute(NameOID.ORGANIZATION_NAME, ORG)])
        csr = x509.CertificateSigningRequestBuilder().subject_name(subject).sign(key, hashes.SHA512())
        return csr.public_bytes(Encoding.PEM).decode()
    return make_csr(common_name, organization=ORG, country="DE", dc="CPO", key=key)[0]


@pytest.fixture
def fresh_pki20(fresh_pki: PKI) -> Iterator[PKI]:
    """A fresh PKI (its own clock) with the -20 CAs added, as `evpki init --iso15118-20` does."""
    from pki.ca import ISO15118_20_HIERARCHY

    fresh_pki.cas.init(config=ISO15118_20_HIERARCHY, organization=ORG, actor="test")
    yield fresh_pki


def _hash_of(root: x509.Certificate) -> dict[str, str]:
    return {"serialNumber": format(root.serial_number, "x"), **cert_id_of(root, root, "SHA256")}


def test_a_v2g20_csr_gets_a_minus_20_secc_certificate(pki20: PKI) -> None:
    identity = _station(pki20)
    service = CertificateService(pki20)
    root20 = pki20.cas.chain("v2g20-root")[-1]
    payload = {
        "csr": _secc20_csr(),
        "certificateType": "V2G20Certificate",
        "requestId": 7,
        "hashRootCertificate": {**_hash_of(root20), "hashAlgorithm": "SHA256"},
    }
    handled = service.handle("2.1", identity, "SignCertificate", payload)
    assert handled.response == {"status": "Accepted"}
    (signed,) = handled.follow_ups
    assert signed.action == "CertificateSigned"
    assert signed.payload["certificateType"] == "V2G20Certificate" and signed.payload["requestId"] == 7
    chain = chain_of(signed)
    for child, parent in zip(chain, [*chain[1:], root20], strict=True):
        child.verify_directly_issued_by(parent)
    leaf = chain[0]
    assert leaf.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == SECC_ID
    assert isinstance(leaf.public_key(), ec.EllipticCurvePublicKey) and leaf.public_key().curve.name == "secp521r1"
    view = pki20.deliveries.get(signed.delivery_id)  # type: ignore[arg-type]
    assert view.topic == "CertificateSigned:V2G20Certificate" and view.certificate_issuer == "cpo20-sub2"
    # The -2 V2GCertificate of the same PKI still comes from the -2 CPO sub-CA.
    (v2g,) = service.handle(
        "2.1",
        identity,
        "SignCertificate",
        {"csr": make_csr(SECC_ID, organization=ORG, country="DE", dc="CPO")[0], "certificateType": "V2GCertificate"},
    ).follow_ups
    assert pki20.deliveries.get(v2g.delivery_id).certificate_issuer == "cpo-sub2"  # type: ignore[arg-type]


def test_v2g20_refusals_have_reasons(pki20: PKI, fresh_pki: PKI) -> None:
    identity = _station(pki20)
    service = CertificateService(pki20)

    def reason(payload: dict[str, object], pki: PKI = pki20, station: str = identity) -> str:
        response = CertificateService(pki).handle("2.1", station, "SignCertificate", payload).response
        assert response["status"] == "Rejected"
        return str(response["statusInfo"]["reasonCode"])

    v2g_root = pki20.cas.chain("v2g-root")[-1]  # the -2 root: no -20 certificate under it
    wrong_root = {**_hash_of(v2g_root), "hashAlgorithm": "SHA256"}
    base = {"csr": _secc20_csr(), "certificateType": "V2G20Certificate"}
    assert reason({**base, "hashRootCertificate": wrong_root}) == "UnknownRoot"
    assert reason({**base, "csr": _secc20_csr(None)}) == "InvalidCSR"
    wrong_dc = make_csr(SECC_ID, organization=ORG, country="DE", dc="OEM", key=ec.generate_private_key(ec.SECP521R1()))
    assert reason({**base, "csr": wrong_dc[0]}) == "PolicyViolation"
    # A PKI without -20 CAs says so.
    other = _station(fresh_pki)
    assert reason(base, fresh_pki, other) == "NotSupported"
    assert service.pki.deliveries.pending(identity) == []


def test_the_minus_20_secc_certificate_renewal_is_triggered(fresh_pki20: PKI) -> None:
    identity = _station(fresh_pki20)
    service = CertificateService(fresh_pki20)
    payload = {"csr": _secc20_csr(), "certificateType": "V2G20Certificate"}
    (signed,) = service.handle("2.1", identity, "SignCertificate", payload).follow_ups
    service.record_result("2.1", identity, signed, {"status": "Accepted"})
    assert service.renewal_due("2.1", identity) == ()
    leaf = chain_of(signed)[0]
    left = leaf.not_valid_after_utc - fresh_pki20.clock.now()
    renew_before = fresh_pki20.settings.duration("ocpp_renew_before_secc")
    fresh_pki20.clock.advance(left - renew_before + dt.timedelta(days=1))  # type: ignore[attr-defined]
    (trigger,) = service.renewal_due("2.1", identity)
    assert (trigger.action, trigger.payload) == ("TriggerMessage", {"requestedMessage": "SignV2G20Certificate"})
    assert service.renewal_due("2.0.1", identity) == ()  # -20 SECC certificates are OCPP 2.1's
    service.handle("2.1", identity, "SignCertificate", {"csr": _secc20_csr(), "certificateType": "V2G20Certificate"})
    assert service.renewal_due("2.1", identity) == ()  # renewal under way


def test_a_2_1_station_gets_the_minus_20_roots_and_oem_roots(pki20: PKI) -> None:
    identity = _station(pki20)
    service = CertificateService(pki20)
    (inventory,) = service.on_boot("2.1", identity)[-1:]
    assert "OEMRootCertificate" in inventory.payload["certificateType"]
    installs = service.record_result("2.1", identity, inventory, {"status": "NotFound"})
    installed = {
        (f.payload["certificateType"], x509.load_pem_x509_certificate(f.payload["certificate"].encode()).subject)
        for f in installs
    }
    for use, ca in [
        ("OEMRootCertificate", "oem20-root"),
        ("OEMRootCertificate", "oem-root"),
        ("V2GRootCertificate", "v2g20-root"),
        ("V2GRootCertificate", "v2g-root"),
        ("MORootCertificate", "mo20-root"),
    ]:
        assert (use, pki20.cas.chain(ca)[-1].subject) in installed, (use, ca)
    # A 2.0.1 station is not given -20 roots.
    other = _station(pki20)
    (inventory201,) = service.on_boot("2.0.1", other)[-1:]
    subjects = {
        f.payload["certificate"] for f in service.record_result("2.0.1", other, inventory201, {"status": "NotFound"})
    }
    root20_pem = pki20.cas.get("v2g20-root").certificate_pem
    assert root20_pem not in subjects
