"""CSR policy, driven by requests made with ``openssl req``.

Each refusal names the broken rule (``PolicyViolation.rule``) and leaves the store as it
was: no certificate row and no audit record. Acceptances check the issued subject.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from sqlalchemy import func, select

from pki import PKI, InvalidInput, NotFound, PolicyViolation, RequestIdentity
from pki.ca.policy import MAX_CSR_CHARS
from pki.store.models import CertificateRow
from tests.conftest import ORG, requires_openssl
from tests.pki.openssl_req import openssl_csr

pytestmark = requires_openssl

SECC_ID = "DE*ABC*S*EVSE0001CONTROLLER00000000000000001"
EMAID = "DEABC123456789"  # ISO 15118-2 eMAIDType without separators, 14 characters
PCID = "WMI12345678901234"  # 17 alphanumerics


def _unique(prefix: str) -> str:
    return f"{prefix}{uuid.uuid4().hex[:10].upper()}"


def _stored(pki: PKI) -> tuple[int, int]:
    with pki._ctx.database.read() as session:
        certificates = session.execute(select(func.count()).select_from(CertificateRow)).scalar_one()
    return int(certificates), pki.audit.count()


@contextmanager
def _nothing_stored(pki: PKI) -> Iterator[None]:
    before = _stored(pki)
    yield
    assert _stored(pki) == before


def _refused(pki: PKI, rule: str, issue: Callable[[], object]) -> None:
    with _nothing_stored(pki), pytest.raises(PolicyViolation) as caught:
        issue()
    assert caught.value.rule == rule


def _issued_subject(pem: str) -> x509.Name:
    return x509.load_pem_x509_certificate(pem.encode()).subject


def _station(pki: PKI, csr: str, station_id: str, **kwargs: object) -> object:
    return pki.certificates.issue(profile="station", csr=csr, identity=RequestIdentity(station_id=station_id), **kwargs)


# -- station (OCPP A00.FR.509-511) --------------------------------------------------------------


@pytest.mark.parametrize("key", ["ec-p256", "ec-p384", "rsa-2048"])
def test_station_csr_with_serial_cn_and_cso_org_is_accepted(pki: PKI, key: str) -> None:
    serial = _unique("CP")
    csr, _ = openssl_csr(f"/O={ORG}/CN={serial}", key=key)
    issued = _station(pki, csr, serial)
    subject = _issued_subject(issued.certificate.certificate_pem)
    assert subject.get_attributes_for_oid(x509.NameOID.COMMON_NAME)[0].value == serial
    assert subject.get_attributes_for_oid(x509.NameOID.ORGANIZATION_NAME)[0].value == ORG
    assert issued.certificate.station_serial == serial


def test_station_serial_may_differ_from_ocpp_identity(pki: PKI) -> None:
    station_id, serial = _unique("ID"), _unique("SN")
    csr, _ = openssl_csr(f"/O={ORG}/CN={serial}")
    issued = pki.certificates.issue(
        profile="station", csr=csr, identity=RequestIdentity(station_id=station_id, station_serial=serial)
    )
    assert (issued.certificate.identity, issued.certificate.station_serial) == (station_id, serial)


def test_station_rsa_1024_is_refused(pki: PKI) -> None:
    serial = _unique("CP")
    csr, _ = openssl_csr(f"/O={ORG}/CN={serial}", key="rsa-1024")
    _refused(pki, "key.rsa-min-bits", lambda: _station(pki, csr, serial))


def test_station_ed25519_is_refused(pki: PKI) -> None:
    serial = _unique("CP")
    csr, _ = openssl_csr(f"/O={ORG}/CN={serial}", key="ed25519")
    _refused(pki, "key.algorithm", lambda: _station(pki, csr, serial))


def test_station_cn_other_than_serial_is_refused(pki: PKI) -> None:
    csr, _ = openssl_csr(f"/O={ORG}/CN={_unique('CP')}")
    _refused(pki, "station.cn-serial", lambda: _station(pki, csr, _unique("CP")))


def test_station_organization_other_than_cso_is_refused(pki: PKI) -> None:
    serial = _unique("CP")
    csr, _ = openssl_csr(f"/O=Someone Else Ltd/CN={serial}")
    _refused(pki, "station.organization", lambda: _station(pki, csr, serial))


def test_station_without_organization_is_refused(pki: PKI) -> None:
    serial = _unique("CP")
    csr, _ = openssl_csr(f"/CN={serial}")
    _refused(pki, "subject.missing-o", lambda: _station(pki, csr, serial))


def test_station_san_dnsname_is_refused(pki: PKI) -> None:
    serial = _unique("CP")
    csr, _ = openssl_csr(f"/O={ORG}/CN={serial}", san="DNS:cp.example.com")
    _refused(pki, "station.san-dnsname", lambda: _station(pki, csr, serial))


@pytest.mark.parametrize(
    ("cn", "subj_cn"),
    [
        ("192.168.10.20", "192.168.10.20"),
        ("fe80::1", "fe80::1"),
        ("http://cp.example", r"http:\/\/cp.example"),
        ("www.cp-0001.example", "www.cp-0001.example"),
    ],
    ids=["ipv4", "ipv6", "url", "www-host"],
)
def test_station_cn_that_looks_like_an_address_is_refused(pki: PKI, cn: str, subj_cn: str) -> None:
    csr, _ = openssl_csr(f"/O={ORG}/CN={subj_cn}")
    _refused(pki, "station.serial-format", lambda: _station(pki, csr, cn))


def test_station_multi_valued_rdn_is_refused(pki: PKI) -> None:
    serial = _unique("CP")
    csr, _ = openssl_csr(f"/O={ORG}+OU=Ops/CN={serial}", multivalue_rdn=True)
    _refused(pki, "subject.multi-valued-rdn", lambda: _station(pki, csr, serial))


def test_station_subject_attribute_outside_profile_is_refused(pki: PKI) -> None:
    serial = _unique("CP")
    csr, _ = openssl_csr(f"/O={ORG}/CN={serial}/DC=CPO")
    _refused(pki, "subject.attribute-not-allowed", lambda: _station(pki, csr, serial))


# -- SECC (ISO 15118-2 SECC leaf) ----------------------------------------------------------------


def _secc(pki: PKI, csr: str, secc_id: str = SECC_ID) -> object:
    return pki.certificates.issue(profile="secc", csr=csr, identity=RequestIdentity(secc_id=secc_id))


def test_secc_csr_with_secc_id_org_country_and_dc_cpo_is_accepted(pki: PKI) -> None:
    csr, _ = openssl_csr(f"/C=DE/O={ORG}/CN={SECC_ID}/DC=CPO")
    issued = _secc(pki, csr)
    subject = _issued_subject(issued.certificate.certificate_pem)
    assert subject.get_attributes_for_oid(x509.NameOID.COMMON_NAME)[0].value == SECC_ID
    assert subject.get_attributes_for_oid(x509.NameOID.DOMAIN_COMPONENT)[0].value == "CPO"
    assert issued.certificate.issuer_id == "cpo-sub2"


def test_secc_p384_is_refused_under_iso15118_2(pki: PKI) -> None:
    csr, _ = openssl_csr(f"/C=DE/O={ORG}/CN={SECC_ID}/DC=CPO", key="ec-p384")
    _refused(pki, "key.iso15118-2", lambda: _secc(pki, csr))


def test_secc_rsa_is_refused_under_iso15118_2(pki: PKI) -> None:
    csr, _ = openssl_csr(f"/C=DE/O={ORG}/CN={SECC_ID}/DC=CPO", key="rsa-2048")
    _refused(pki, "key.iso15118-2", lambda: _secc(pki, csr))


def test_secc_without_dc_is_refused(pki: PKI) -> None:
    csr, _ = openssl_csr(f"/C=DE/O={ORG}/CN={SECC_ID}")
    _refused(pki, "subject.missing-dc", lambda: _secc(pki, csr))


def test_secc_with_dc_other_than_cpo_is_refused(pki: PKI) -> None:
    csr, _ = openssl_csr(f"/C=DE/O={ORG}/CN={SECC_ID}/DC=MO")
    _refused(pki, "secc.dc-cpo", lambda: _secc(pki, csr))


def test_secc_without_country_is_refused(pki: PKI) -> None:
    csr, _ = openssl_csr(f"/O={ORG}/CN={SECC_ID}/DC=CPO")
    _refused(pki, "subject.missing-c", lambda: _secc(pki, csr))


def test_secc_without_organization_is_refused(pki: PKI) -> None:
    csr, _ = openssl_csr(f"/C=DE/CN={SECC_ID}/DC=CPO")
    _refused(pki, "subject.missing-o", lambda: _secc(pki, csr))


def test_secc_cn_other_than_secc_id_is_refused(pki: PKI) -> None:
    csr, _ = openssl_csr(f"/C=DE/O={ORG}/CN=DE*ABC*S*OTHER/DC=CPO")
    _refused(pki, "secc.cn-secc-id", lambda: _secc(pki, csr))


# -- CSMS server (OCPP A00.FR.510) ---------------------------------------------------------------


def _csms(pki: PKI, csr: str, fqdn: str) -> object:
    return pki.certificates.issue(profile="csms-server", csr=csr, identity=RequestIdentity(fqdn=fqdn), ca_id="cso-sub")


def test_csms_server_cn_fqdn_is_accepted_and_gets_a_san(pki: PKI) -> None:
    fqdn = f"{_unique('csms').lower()}.example.com"
    csr, _ = openssl_csr(f"/O={ORG}/CN={fqdn}", san=f"DNS:{fqdn}")
    issued = _csms(pki, csr, fqdn)
    certificate = x509.load_pem_x509_certificate(issued.certificate.certificate_pem.encode())
    san = certificate.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert san.get_values_for_type(x509.DNSName) == [fqdn]


def test_csms_server_wildcard_is_refused(pki: PKI) -> None:
    csr, _ = openssl_csr(f"/O={ORG}/CN=*.example.com")
    _refused(pki, "csms-server.wildcard", lambda: _csms(pki, csr, "*.example.com"))


def test_csms_server_extra_san_is_refused(pki: PKI) -> None:
    csr, _ = openssl_csr(f"/O={ORG}/CN=csms.example.com", san="DNS:csms.example.com,DNS:evil.example.com")
    _refused(pki, "csms-server.san", lambda: _csms(pki, csr, "csms.example.com"))


def test_csms_server_san_ip_is_refused(pki: PKI) -> None:
    csr, _ = openssl_csr(f"/O={ORG}/CN=csms.example.com", san="IP:10.0.0.1")
    _refused(pki, "csms-server.san", lambda: _csms(pki, csr, "csms.example.com"))


def test_csms_server_cn_other_than_fqdn_is_refused(pki: PKI) -> None:
    csr, _ = openssl_csr(f"/O={ORG}/CN=other.example.com")
    _refused(pki, "csms-server.cn-fqdn", lambda: _csms(pki, csr, "csms.example.com"))


# -- contract (eMAID) and OEM provisioning (PCID) ---------------------------------------------------


def test_contract_with_emaid_cn_and_dc_mo_is_accepted(pki: PKI) -> None:
    csr, _ = openssl_csr(f"/CN={EMAID}/DC=MO")
    issued = pki.certificates.issue(profile="contract", csr=csr, identity=RequestIdentity(emaid=EMAID))
    assert (issued.certificate.identity, issued.certificate.issuer_id) == (EMAID, "mo-sub2")


@pytest.mark.parametrize("emaid", ["DE-ABC-C12345678-X", "DEABC1234", "deabc123456789"])
def test_contract_with_malformed_emaid_is_refused(pki: PKI, emaid: str) -> None:
    csr, _ = openssl_csr(f"/CN={emaid}/DC=MO")
    _refused(
        pki,
        "contract.emaid-format",
        lambda: pki.certificates.issue(profile="contract", csr=csr, identity=RequestIdentity(emaid=emaid)),
    )


def test_contract_without_dc_mo_is_refused(pki: PKI) -> None:
    csr, _ = openssl_csr(f"/CN={EMAID}/DC=CPO")
    _refused(
        pki,
        "contract.dc-mo",
        lambda: pki.certificates.issue(profile="contract", csr=csr, identity=RequestIdentity(emaid=EMAID)),
    )


def test_oem_provisioning_with_pcid_cn_is_accepted(pki: PKI) -> None:
    csr, _ = openssl_csr(f"/CN={PCID}/DC=OEM")
    issued = pki.certificates.issue(profile="oem-provisioning", csr=csr, identity=RequestIdentity(pcid=PCID))
    assert (issued.certificate.identity, issued.certificate.issuer_id) == (PCID, "oem-sub2")


@pytest.mark.parametrize("pcid", ["WMI1234", "WMI-1234567890123", "WMI12345678901234567"])
def test_oem_provisioning_with_malformed_pcid_is_refused(pki: PKI, pcid: str) -> None:
    csr, _ = openssl_csr(f"/CN={pcid}/DC=OEM")
    _refused(
        pki,
        "oem-provisioning.pcid-format",
        lambda: pki.certificates.issue(profile="oem-provisioning", csr=csr, identity=RequestIdentity(pcid=pcid)),
    )


# -- the request itself ----------------------------------------------------------------------------


def test_csr_with_corrupted_signature_fails_proof_of_possession(pki: PKI) -> None:
    serial = _unique("CP")
    csr, _ = openssl_csr(f"/O={ORG}/CN={serial}", key="rsa-2048")
    der = bytearray(x509.load_pem_x509_csr(csr.encode()).public_bytes(serialization.Encoding.DER))
    der[-10] ^= 0xFF  # inside the RSA signature value, the last element of the CSR
    corrupted = x509.load_der_x509_csr(bytes(der)).public_bytes(serialization.Encoding.PEM).decode()
    _refused(pki, "csr.proof-of-possession", lambda: _station(pki, corrupted, serial))


@pytest.mark.parametrize(
    "payload",
    [
        "-----BEGIN CERTIFICATE REQUEST-----\nbm90IGEgY3Ny\n-----END CERTIFICATE REQUEST-----\n",
        "-----BEGIN CERTIFICATE REQUEST-----\n!!!!\n-----END CERTIFICATE REQUEST-----\n",
        b"\x30\x82\x01\x00garbage",
        b"",
    ],
    ids=["pem-not-pkcs10", "pem-bad-base64", "der-truncated", "empty"],
)
def test_malformed_csr_is_invalid_input(pki: PKI, payload: str | bytes) -> None:
    with _nothing_stored(pki), pytest.raises(InvalidInput):
        _station(pki, payload, "CP0001")  # type: ignore[arg-type]


def test_csr_over_ocpp_size_limit_is_invalid_input(pki: PKI) -> None:
    fqdn = "csms.example.com"
    names = ",".join(f"DNS:host{i:03d}.{'x' * 40}.example.com" for i in range(80))
    csr, _ = openssl_csr(f"/O={ORG}/CN={fqdn}", san=names)
    assert len(csr) > MAX_CSR_CHARS
    with _nothing_stored(pki), pytest.raises(InvalidInput):
        _csms(pki, csr, fqdn)


def test_unknown_profile_is_not_found(pki: PKI) -> None:
    serial = _unique("CP")
    csr, _ = openssl_csr(f"/O={ORG}/CN={serial}")
    with _nothing_stored(pki), pytest.raises(NotFound):
        pki.certificates.issue(profile="toaster", csr=csr, identity=RequestIdentity(station_id=serial))


def test_profile_not_issued_by_named_ca_is_refused(pki: PKI) -> None:
    serial = _unique("CP")
    csr, _ = openssl_csr(f"/O={ORG}/CN={serial}")
    _refused(pki, "issuer.profile", lambda: _station(pki, csr, serial, ca_id="mo-sub2"))


def test_unknown_ca_is_not_found(pki: PKI) -> None:
    serial = _unique("CP")
    csr, _ = openssl_csr(f"/O={ORG}/CN={serial}")
    with _nothing_stored(pki), pytest.raises(NotFound):
        _station(pki, csr, serial, ca_id="no-such-ca")


def test_validity_over_profile_maximum_is_refused(pki: PKI) -> None:
    serial = _unique("CP")
    csr, _ = openssl_csr(f"/O={ORG}/CN={serial}")
    _refused(pki, "validity.max", lambda: _station(pki, csr, serial, validity=dt.timedelta(days=3 * 365)))


def test_validity_within_profile_maximum_is_honoured(pki: PKI) -> None:
    serial = _unique("CP")
    csr, _ = openssl_csr(f"/O={ORG}/CN={serial}")
    issued = _station(pki, csr, serial, validity=dt.timedelta(days=30))
    lifetime = issued.certificate.not_after - issued.certificate.not_before
    assert lifetime == dt.timedelta(days=30, minutes=5)  # plus the notBefore back-dating
