"""EST enrollment in the domain (``pki.est``): secrets, renewal, bootstrap certificates, CA labels and OPCP paths.

Each refusal is checked to leave the secret unused and to store no certificate.
"""

from __future__ import annotations

import base64
import datetime as dt
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import pkcs7
from cryptography.x509.oid import NameOID

from pki import PKI, RequestIdentity, Settings
from pki.ca import CertificateFilter
from pki.core import Conflict, InvalidInput, NotFound, PolicyViolation, Unauthenticated, Unavailable
from tests.conftest import make_csr

STATION, SERIAL = "CP-EST-1", "SN-EST-1"
SECC_ID = "DE*ABC*E1234567*1"


def _body(csr_pem: str) -> bytes:
    """What an EST client sends: base64 of the DER request, in MIME lines."""
    der = x509.load_pem_x509_csr(csr_pem.encode()).public_bytes(serialization.Encoding.DER)
    return base64.encodebytes(der)


def _issued(enrolled_pkcs7: bytes) -> x509.Certificate:
    certificates = pkcs7.load_der_pkcs7_certificates(enrolled_pkcs7)
    assert len(certificates) == 1  # RFC 7030 §4.2.3: only the issued certificate
    return certificates[0]


def _der(certificate: x509.Certificate) -> bytes:
    return certificate.public_bytes(serialization.Encoding.DER)


def _station_count(pki: PKI) -> int:
    return len(pki.certificates.list(CertificateFilter(profile="station", identity=STATION)))


@pytest.fixture
def est(fresh_pki: PKI) -> PKI:
    fresh_pki.stations.add(identity=STATION, serial=SERIAL)
    return fresh_pki


def test_a_secret_enrolls_once_under_the_station_policy(est: PKI) -> None:
    view, secret = est.est.add_secret(identity=STATION, profile="station", actor="test")
    assert secret.startswith("est_") and view.status == "active"
    enrolled = est.est.enroll(est.est.target(), _body(make_csr(SERIAL)[0]), renew=False, basic=(STATION, secret))
    certificate = _issued(enrolled.pkcs7)
    assert certificate.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == SERIAL
    assert enrolled.certificate.identity == STATION and enrolled.certificate.issuer_id == "cso-sub"
    [used] = est.est.secrets(include_inactive=True)
    assert used.status == "used" and used.certificate_serial == enrolled.certificate.serial
    assert used.certificate_issuer == "cso-sub"
    with pytest.raises(Unauthenticated, match="is used"):
        est.est.enroll(est.est.target(), _body(make_csr(SERIAL)[0]), renew=False, basic=(STATION, secret))
    assert est.audit.records(after=est.audit.count() - 1)[-1].actor == f"est:secret:{view.id}"
    assert est.audit.verify().ok


def test_a_refused_csr_does_not_burn_the_secret(est: PKI) -> None:
    _, secret = est.est.add_secret(identity=STATION, profile="station")
    for csr in (make_csr("SN-SOMEONE-ELSE")[0], make_csr(SERIAL, organization="Other Org")[0]):
        with pytest.raises(PolicyViolation):
            est.est.enroll(est.est.target(), _body(csr), renew=False, basic=(STATION, secret))
    with pytest.raises(InvalidInput, match="base64"):
        est.est.enroll(est.est.target(), b"not base64 !!", renew=False, basic=(STATION, secret))
    with pytest.raises(InvalidInput, match="PKCS#10"):
        est.est.enroll(est.est.target(), base64.b64encode(b"garbage"), renew=False, basic=(STATION, secret))
    assert _station_count(est) == 0
    assert [s.status for s in est.est.secrets()] == ["active"]
    est.est.enroll(est.est.target(), _body(make_csr(SERIAL)[0]), renew=False, basic=(STATION, secret))


def test_wrong_expired_and_revoked_secrets_authenticate_nobody(est: PKI) -> None:
    body = _body(make_csr(SERIAL)[0])
    view, secret = est.est.add_secret(identity=STATION, profile="station", ttl=dt.timedelta(hours=1))
    altered = secret[:-1] + ("y" if secret.endswith("x") else "x")  # never the secret itself
    for credentials in (("CP-OTHER", secret), (STATION, altered), (STATION, "short")):
        with pytest.raises(Unauthenticated, match="wrong EST identity or enrollment secret"):
            est.est.enroll(est.est.target(), body, renew=False, basic=credentials)
    with pytest.raises(Unauthenticated, match="needs HTTP Basic"):
        est.est.enroll(est.est.target(), body, renew=False)
    est.clock.advance(dt.timedelta(hours=2))  # type: ignore[attr-defined]
    with pytest.raises(Unauthenticated, match="expired"):
        est.est.enroll(est.est.target(), body, renew=False, basic=(STATION, secret))
    other, other_secret = est.est.add_secret(identity=STATION, profile="station")
    est.est.revoke_secret(other.id, actor="test")
    with pytest.raises(Unauthenticated, match="revoked"):
        est.est.enroll(est.est.target(), body, renew=False, basic=(STATION, other_secret))
    with pytest.raises(Conflict):
        est.est.revoke_secret(other.id)
    with pytest.raises(NotFound):
        est.est.revoke_secret(999_999)
    assert _station_count(est) == 0
    assert {s.status for s in est.est.secrets(include_inactive=True)} == {"expired", "revoked"}
    assert view.id != other.id


def test_secret_registration_is_checked(est: PKI) -> None:
    with pytest.raises(NotFound, match="station add"):
        est.est.add_secret(identity="CP-NOT-REGISTERED", profile="station")
    with pytest.raises(InvalidInput, match="not 'contract'"):
        est.est.add_secret(identity="DEABC123456789", profile="contract")
    with pytest.raises(InvalidInput, match="does not issue secc"):
        est.est.add_secret(identity=SECC_ID, profile="secc", ca_id="cso-sub")
    with pytest.raises(NotFound):
        est.est.add_secret(identity=SECC_ID, profile="secc", ca_id="no-such-ca")
    with pytest.raises(InvalidInput, match="identity"):
        est.est.add_secret(identity="user:with-colon", profile="secc")
    with pytest.raises(InvalidInput, match="at most 366 days"):
        est.est.add_secret(identity=SECC_ID, profile="secc", ttl=dt.timedelta(days=400))
    assert est.est.secrets(include_inactive=True) == []


def test_an_secc_secret_needs_the_secc_id_as_cn_and_dc_cpo(est: PKI) -> None:
    _, secret = est.est.add_secret(identity=SECC_ID, profile="secc")
    target = est.est.opcp_target("cpo", "ISO15118-2")
    assert target.ca_id == "cpo-sub2" and target.profile == "secc"
    with pytest.raises(PolicyViolation, match=r"rule secc\.cn-secc-id"):
        csr = make_csr("DE*ABC*E7654321*1", country="DE", dc="CPO")[0]
        est.est.enroll(target, _body(csr), renew=False, basic=(SECC_ID, secret))
    with pytest.raises(PolicyViolation, match=r"rule secc\.dc-cpo"):
        est.est.enroll(target, _body(make_csr(SECC_ID, country="DE", dc="MO")[0]), renew=False, basic=(SECC_ID, secret))
    with pytest.raises(PolicyViolation, match=r"rule est\.target-profile"):
        oem = est.est.opcp_target("oem", "ISO15118-2")
        est.est.enroll(oem, _body(make_csr(SECC_ID, country="DE", dc="CPO")[0]), renew=False, basic=(SECC_ID, secret))
    enrolled = est.est.enroll(
        est.est.target("cpo-sub2"), _body(make_csr(SECC_ID, country="DE", dc="CPO")[0]), renew=False,
        basic=(SECC_ID, secret),
    )  # fmt: skip
    assert enrolled.certificate.profile == "secc" and enrolled.certificate.issuer_id == "cpo-sub2"


def _station_certificate(pki: PKI) -> tuple[x509.Certificate, object]:
    csr, key = make_csr(SERIAL)
    issued = pki.certificates.issue(
        profile="station", csr=csr, identity=RequestIdentity(station_id=STATION, station_serial=SERIAL)
    )
    return x509.load_pem_x509_certificate(issued.certificate.certificate_pem.encode()), key


def test_reenroll_renews_the_presented_certificate_once(est: PKI) -> None:
    current, _ = _station_certificate(est)
    enrolled = est.est.enroll(
        est.est.target("cso-sub"), _body(make_csr(SERIAL)[0]), renew=True, client_certificate=_der(current)
    )
    renewed = _issued(enrolled.pkcs7)
    assert renewed.subject == current.subject
    old = est.certificates.get(format(current.serial_number, "X"), "cso-sub")
    assert old.status == "superseded" and old.superseded_by == enrolled.certificate.serial
    assert enrolled.authenticated_by == f"est:reenroll:cso-sub/{old.serial}"
    with pytest.raises(PolicyViolation, match=r"rule est\.reenroll-superseded"):
        est.est.enroll(est.est.target(), _body(make_csr(SERIAL)[0]), renew=True, client_certificate=_der(current))
    again = est.est.enroll(est.est.target(), _body(make_csr(SERIAL)[0]), renew=True, client_certificate=_der(renewed))
    assert again.certificate.issuer_id == "cso-sub"


def test_reenroll_refusals(est: PKI) -> None:
    current, key = _station_certificate(est)
    der = _der(current)
    with pytest.raises(Unauthenticated, match="client certificate"):
        est.est.enroll(est.est.target(), _body(make_csr(SERIAL)[0]), renew=True)
    with pytest.raises(PolicyViolation, match=r"rule est\.reenroll-subject"):
        csr = make_csr(SERIAL, country="DE")[0]
        est.est.enroll(est.est.target(), _body(csr), renew=True, client_certificate=der)
    with pytest.raises(Conflict, match="new key pair"):
        est.est.enroll(est.est.target(), _body(make_csr(SERIAL, key=key)[0]), renew=True, client_certificate=der)
    with pytest.raises(PolicyViolation, match=r"rule est\.target-profile"):
        target = est.est.opcp_target("cpo", "iso15118-2")
        est.est.enroll(target, _body(make_csr(SERIAL)[0]), renew=True, client_certificate=der)
    with pytest.raises(PolicyViolation, match=r"rule issuer\.profile"):
        est.est.enroll(est.est.target("cpo-sub2"), _body(make_csr(SERIAL)[0]), renew=True, client_certificate=der)
    foreign = _foreign_ca()
    stranger = _leaf(foreign, SERIAL)
    with pytest.raises(PolicyViolation, match=r"rule est\.reenroll-unknown"):
        est.est.enroll(est.est.target(), _body(make_csr(SERIAL)[0]), renew=True, client_certificate=_der(stranger))
    est.revocation.revoke(format(current.serial_number, "X"), "keyCompromise", ca_id="cso-sub")
    with pytest.raises(PolicyViolation, match=r"rule est\.reenroll-revoked"):
        est.est.enroll(est.est.target(), _body(make_csr(SERIAL)[0]), renew=True, client_certificate=der)
    assert _station_count(est) == 1


def test_reenroll_of_an_expired_certificate_is_refused(est: PKI) -> None:
    current, _ = _station_certificate(est)
    est.clock.advance(dt.timedelta(days=400))  # type: ignore[attr-defined]
    with pytest.raises(PolicyViolation, match=r"rule est\.reenroll-expired"):
        est.est.enroll(est.est.target(), _body(make_csr(SERIAL)[0]), renew=True, client_certificate=_der(current))


def _foreign_ca(name: str = "Factory Device CA") -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    start = dt.datetime(2025, 1, 1, tzinfo=dt.UTC)
    certificate = (
        x509.CertificateBuilder().subject_name(subject).issuer_name(subject).public_key(key.public_key())
        .serial_number(x509.random_serial_number()).not_valid_before(start)
        .not_valid_after(start + dt.timedelta(days=3650))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .sign(key, hashes.SHA256())
    )  # fmt: skip
    return certificate, key


def _leaf(ca: tuple[x509.Certificate, ec.EllipticCurvePrivateKey], cn: str) -> x509.Certificate:
    key = ec.generate_private_key(ec.SECP256R1())
    start = dt.datetime(2025, 1, 1, tzinfo=dt.UTC)
    return (
        x509.CertificateBuilder().subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)]))
        .issuer_name(ca[0].subject).public_key(key.public_key()).serial_number(x509.random_serial_number())
        .not_valid_before(start).not_valid_after(start + dt.timedelta(days=3650))
        .sign(ca[1], hashes.SHA256())
    )  # fmt: skip


def _with_bootstrap(pki: PKI, value: str) -> PKI:
    settings = Settings(**{**pki.settings.model_dump(), "est_bootstrap_cas": value})
    return PKI(database=pki._ctx.database, keys=pki._ctx.keys, settings=settings, clock=pki.clock)


def test_a_bootstrap_certificate_from_a_configured_ca_enrolls_its_station(est: PKI, tmp_path: Path) -> None:
    factory = _foreign_ca()
    bundle = tmp_path / "factory.pem"
    bundle.write_bytes(factory[0].public_bytes(serialization.Encoding.PEM))
    with pytest.raises(PolicyViolation, match="no bootstrap CA is configured"):
        est.est.enroll(
            est.est.target(), _body(make_csr(SERIAL)[0]), renew=False, client_certificate=_der(_leaf(factory, SERIAL))
        )
    pki = _with_bootstrap(est, str(bundle))
    assert factory[0] in pki.est.client_ca_certificates()
    enrolled = pki.est.enroll(
        pki.est.target(), _body(make_csr(SERIAL)[0]), renew=False, client_certificate=_der(_leaf(factory, SERIAL))
    )
    assert enrolled.certificate.identity == STATION and enrolled.authenticated_by.startswith("est:bootstrap:")
    refusals = [
        (_leaf(factory, "SN-UNREGISTERED"), r"rule est\.bootstrap-station"),
        (_leaf(_foreign_ca("Some Other CA"), SERIAL), r"rule est\.bootstrap-ca"),
    ]
    for certificate, rule in refusals:
        with pytest.raises(PolicyViolation, match=rule):
            pki.est.enroll(
                pki.est.target(), _body(make_csr(SERIAL)[0]), renew=False, client_certificate=_der(certificate)
            )
    with pytest.raises(PolicyViolation, match=r"rule station\.cn-serial"):
        pki.est.enroll(
            pki.est.target(), _body(make_csr("SN-X")[0]), renew=False, client_certificate=_der(_leaf(factory, SERIAL))
        )
    pki.clock.advance(dt.timedelta(days=3650))  # type: ignore[attr-defined]
    with pytest.raises(PolicyViolation, match=r"rule est\.bootstrap-expired"):
        pki.est.enroll(
            pki.est.target(), _body(make_csr(SERIAL)[0]), renew=False, client_certificate=_der(_leaf(factory, SERIAL))
        )
    assert _station_count(pki) == 1


def test_a_bootstrap_ca_of_ours_needs_the_certificate_in_our_store_and_unrevoked(est: PKI) -> None:
    pki = _with_bootstrap(est, "cso-sub")
    current, _ = _station_certificate(pki)
    enrolled = pki.est.enroll(
        pki.est.target(), _body(make_csr(SERIAL)[0]), renew=False, client_certificate=_der(current)
    )
    assert enrolled.certificate.identity == STATION
    pki.revocation.revoke(format(current.serial_number, "X"), "keyCompromise", ca_id="cso-sub")
    with pytest.raises(PolicyViolation, match=r"rule est\.bootstrap-revoked"):
        pki.est.enroll(pki.est.target(), _body(make_csr(SERIAL)[0]), renew=False, client_certificate=_der(current))
    with pytest.raises(Unavailable, match="neither one of our CAs nor a PEM file"):
        _with_bootstrap(est, "no-such-ca").est.enroll(
            pki.est.target(), _body(make_csr(SERIAL)[0]), renew=False, client_certificate=_der(current)
        )


def test_labels_and_opcp_paths_name_our_cas(pki: PKI) -> None:
    assert pki.est.target("cpo-sub2").ca_id == "cpo-sub2"
    for label in ("v2g-root", "no-such-ca", "../etc"):
        with pytest.raises(NotFound):
            pki.est.target(label)
    assert pki.est.opcp_target("hubject-cpo", "iso15118-2", "secp256r1").ca_id == "cpo-sub2"
    assert pki.est.opcp_target("mo", "ISO15118-2").ca_id == "mo-sub2"
    assert pki.est.opcp_target("oem", "ISO15118-2").ca_id == "oem-sub2"
    assert pki.est.opcp_target("cps", "ISO15118-2").ca_id == "cps-sub2"
    for args in (("veh", "ISO15118-2"), ("cpo", "ISO15118-20"), ("cpo", "ISO15118-2", "ed448"), ("xyz", "ISO15118-2"),
                 ("cpo", "ISO15118-3")):  # fmt: skip
        with pytest.raises(NotFound):
            pki.est.opcp_target(*args)
    # A PKCS#7 certificate set is DER-sorted: compare sets, not lists.
    chain = pkcs7.load_der_pkcs7_certificates(pki.est.cacerts(pki.est.target("cpo-sub2")))
    assert set(chain) == set(pki.cas.chain("cpo-sub2")) and len(chain) == 3
    default = pkcs7.load_der_pkcs7_certificates(pki.est.cacerts(pki.est.target()))
    assert set(default) == set(pki.cas.chain("cso-sub"))


def test_contract_and_cps_enrollment_is_refused_with_the_reason(est: PKI) -> None:
    _, secret = est.est.add_secret(identity=SECC_ID, profile="secc")
    for role in ("mo", "cps"):
        with pytest.raises(PolicyViolation, match=r"rule est\.target-profile"):
            est.est.enroll(est.est.opcp_target(role, "ISO15118-2"), _body(make_csr(SECC_ID, dc="CPO")[0]),
                           renew=False, basic=(SECC_ID, secret))  # fmt: skip
    assert [s.status for s in est.est.secrets()] == ["active"]
