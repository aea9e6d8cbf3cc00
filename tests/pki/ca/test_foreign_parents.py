"""CAs under a parent we do not run: init leaves them awaiting, ``install`` checks everything, then they serve.

The external operators (a V2G root like Hubject's, a corporate root with an intermediate above the
CSO sub-CA) are made with plain ``cryptography`` in tests/foreign_operator.py.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509 import ocsp
from sqlalchemy import MetaData, create_engine, select

from pki import PKI, RequestIdentity
from pki.ca import CertificateFilter
from pki.core.errors import Conflict, InvalidInput, NotFound, PolicyViolation
from tests.conftest import (
    FRESH_EPOCH,
    ORG,
    drop_database,
    make_csr,
    requires_openssl,
    run_openssl,
)
from tests.foreign_operator import (
    CORPORATE,
    V2G,
    ForeignOperator,
    default_hierarchy_with_external_parents,
    install_all,
    open_awaiting,
    pem,
)


@pytest.fixture(scope="module")
def awaiting_pki(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PKI]:
    pki, name = open_awaiting(tmp_path_factory.mktemp("awaiting"))
    yield pki
    pki.close()
    drop_database(name)


@pytest.fixture(scope="module")
def installed_pki(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PKI]:
    pki, name = open_awaiting(tmp_path_factory.mktemp("installed"))
    install_all(pki)
    yield pki
    pki.close()
    drop_database(name)


def _snapshot(pki: PKI) -> dict[str, list[tuple[object, ...]]]:
    engine = create_engine(pki.settings.database_url)
    metadata = MetaData()
    metadata.reflect(engine)
    with engine.connect() as connection:
        tables = {
            name: sorted(map(tuple, connection.execute(select(table)).all()), key=repr)
            for name, table in metadata.tables.items()
        }
    engine.dispose()
    return tables


# -- awaiting -------------------------------------------------------------------------------------


def test_an_awaiting_ca_issues_nothing_and_says_why(awaiting_pki: PKI) -> None:
    csr, _ = make_csr("SECC-AWAIT-1", country="DE", dc="CPO")
    with pytest.raises(NotFound, match=r"cpo-sub1.*await their certificate from an external parent"):
        awaiting_pki.certificates.issue(profile="secc", csr=csr, identity=RequestIdentity(secc_id="SECC-AWAIT-1"))
    with pytest.raises(NotFound, match="awaits its certificate from its external parent"):
        awaiting_pki.cas.get("cpo-sub1")
    assert {ca.id for ca in awaiting_pki.cas.awaiting()} == {"cpo-sub1", "cps-sub1", "cso-sub"}


def test_init_again_keeps_the_request_and_its_key(awaiting_pki: PKI, tmp_path: Path) -> None:
    before = awaiting_pki.cas.request("cpo-sub1").csr_pem
    config = tmp_path / "hierarchy.toml"
    config.write_text(default_hierarchy_with_external_parents(), encoding="utf-8")
    report = awaiting_pki.cas.init(config=config, actor="test")
    assert "cpo-sub1" in report.awaiting and not report.created
    assert awaiting_pki.cas.request("cpo-sub1").csr_pem == before


def test_the_request_asks_for_what_the_profile_needs(awaiting_pki: PKI) -> None:
    request = x509.load_pem_x509_csr(awaiting_pki.cas.request("cpo-sub1").csr_pem.encode())
    assert request.is_signature_valid
    constraints = request.extensions.get_extension_for_class(x509.BasicConstraints)
    assert constraints.critical and constraints.value.ca and constraints.value.path_length == 1
    usage = request.extensions.get_extension_for_class(x509.KeyUsage).value
    assert usage.key_cert_sign and usage.crl_sign and not usage.digital_signature
    assert len(request.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value.digest) == 8
    assert request.subject.rfc4514_string() == f"DC=V2G,CN=CPO Sub-CA 1,O={ORG},C=DE"


@requires_openssl
def test_openssl_verifies_the_request(awaiting_pki: PKI, tmp_path: Path) -> None:
    path = tmp_path / "cpo-sub1.csr"
    path.write_text(awaiting_pki.cas.request("cpo-sub1").csr_pem)
    result = run_openssl("req", "-in", str(path), "-verify", "-noout", "-text")
    assert result.returncode == 0, result.stderr
    assert "verify OK" in result.stdout + result.stderr
    assert "CA:TRUE, pathlen:1" in result.stdout and "Certificate Sign, CRL Sign" in result.stdout


def _variants(pki: PKI) -> list[tuple[str, str, str | None, type[Exception], str]]:
    request = pki.cas.request("cpo-sub1").csr_pem
    other_key = ec.generate_private_key(ec.SECP256R1())
    other_csr = (
        x509.CertificateSigningRequestBuilder()
        .subject_name(x509.load_pem_x509_csr(request.encode()).subject)
        .add_extension(x509.BasicConstraints(ca=True, path_length=1), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(other_key.public_key()), critical=False)
        .sign(other_key, hashes.SHA256())
        .public_bytes(serialization.Encoding.PEM)
        .decode()
    )
    stranger = ForeignOperator(name="Unknown Root")
    impostor = ForeignOperator(name=V2G.name)  # the same name, another key
    return [
        ("garbage", "not a certificate", V2G.chain_pem(), InvalidInput, "not an X.509 certificate"),
        ("key", pem(V2G.sign(other_csr)), V2G.chain_pem(), PolicyViolation, "install.key"),
        (
            "path length",
            pem(V2G.sign(request, path_length=0)),
            V2G.chain_pem(),
            PolicyViolation,
            "install.path-length",
        ),
        ("eku", pem(V2G.sign(request, extended_usage=True)), V2G.chain_pem(), PolicyViolation, "install.eku"),
        ("no anchor", pem(V2G.sign(request)), None, PolicyViolation, "install.chain"),
        ("unknown root", pem(stranger.sign(request)), None, PolicyViolation, "install.chain"),
        ("forged", pem(impostor.sign(request)), V2G.chain_pem(), PolicyViolation, "install.chain"),
        ("outlives root", pem(V2G.sign(request, days=41 * 365)), V2G.chain_pem(), PolicyViolation, "install.validity"),
        (
            "extra chain",
            pem(V2G.sign(request)),
            V2G.chain_pem() + stranger.root_pem(),
            PolicyViolation,
            "install.chain",
        ),
        (
            "bad chain",
            pem(V2G.sign(request)),
            "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n",
            InvalidInput,
            "chain",
        ),
    ]


def test_every_broken_rule_is_refused_by_name_and_changes_nothing(awaiting_pki: PKI) -> None:
    before = _snapshot(awaiting_pki)
    for label, certificate, chain, kind, rule in _variants(awaiting_pki):
        with pytest.raises(kind) as caught:
            awaiting_pki.cas.install("cpo-sub1", certificate, chain=chain, actor="test")
        assert rule in str(caught.value) or rule == getattr(caught.value, "rule", None), (label, caught.value)
        assert _snapshot(awaiting_pki) == before, label


def test_an_iso15118_2_chain_has_room_for_two_sub_cas_only(awaiting_pki: PKI) -> None:
    deep = ForeignOperator(name="Deep Root", intermediate=True)
    certificate = deep.sign(awaiting_pki.cas.request("cpo-sub1").csr_pem)
    with pytest.raises(PolicyViolation) as caught:
        awaiting_pki.cas.install("cpo-sub1", pem(certificate), chain=deep.chain_pem(), actor="test")
    assert caught.value.rule == "iso15118.chain-depth"


def test_only_an_awaiting_ca_has_a_request(awaiting_pki: PKI) -> None:
    with pytest.raises(NotFound, match="has its certificate"):
        awaiting_pki.cas.request("mo-sub1")
    with pytest.raises(NotFound, match="no CA 'nope' awaits"):
        awaiting_pki.cas.request("nope")


# -- installed ------------------------------------------------------------------------------------


def test_installed_cas_serve_like_our_own(installed_pki: PKI) -> None:
    assert not installed_pki.cas.awaiting()
    cpo = installed_pki.cas.get("cpo-sub1")
    assert cpo.external_parent and not cpo.is_root and cpo.parent_id is None
    assert installed_pki.cas.get("cpo-sub2").parent_id == "cpo-sub1"
    # The chain we hand out stops below the external root and carries the external intermediates.
    assert [c.subject for c in installed_pki.cas.chain("cpo-sub2")] == [
        installed_pki.cas.chain("cpo-sub2")[0].subject,
        x509.load_pem_x509_certificate(cpo.certificate_pem.encode()).subject,
    ]
    assert installed_pki.cas.chain("cso-sub")[-1] == CORPORATE.issuing
    # Stations are offered the external root (from the trust store), never our sub-CA as a root.
    assert V2G.root in installed_pki.cas.roots("V2GRootCertificate")
    assert all(root.subject == root.issuer for root in installed_pki.cas.roots("V2GRootCertificate"))
    with pytest.raises(Conflict, match="already has its certificate"):
        installed_pki.cas.install("cpo-sub1", cpo.certificate_pem, actor="test")


@requires_openssl
def test_openssl_verifies_an_secc_certificate_against_the_external_root_alone(
    installed_pki: PKI, tmp_path: Path
) -> None:
    csr, _ = make_csr("SECC-FOREIGN-1", country="DE", dc="CPO")
    issued = installed_pki.certificates.issue(
        profile="secc", csr=csr, identity=RequestIdentity(secc_id="SECC-FOREIGN-1"), actor="test"
    )
    (tmp_path / "leaf.pem").write_text(issued.certificate.certificate_pem)
    (tmp_path / "chain.pem").write_text("".join(pem(c) for c in issued.chain))
    (tmp_path / "root.pem").write_text(V2G.root_pem())
    result = run_openssl(
        "verify",
        "-CAfile",
        str(tmp_path / "root.pem"),
        "-untrusted",
        str(tmp_path / "chain.pem"),
        "-attime",
        str(int((FRESH_EPOCH + dt.timedelta(hours=1)).timestamp())),
        str(tmp_path / "leaf.pem"),
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert [c.subject for c in issued.chain] == [c.subject for c in installed_pki.cas.chain("cpo-sub2")]
    assert len(issued.chain) == 2  # cpo-sub2, cpo-sub1; not the root


@requires_openssl
def test_a_station_certificate_chains_through_the_corporate_intermediate(installed_pki: PKI, tmp_path: Path) -> None:
    csr, _ = make_csr("SN-FOREIGN-1")
    issued = installed_pki.certificates.issue(
        profile="station",
        csr=csr,
        identity=RequestIdentity(station_id="CS-FOREIGN-1", station_serial="SN-FOREIGN-1"),
        actor="test",
    )
    assert issued.chain[-1] == CORPORATE.issuing  # cso-sub, then the corporate issuing CA
    (tmp_path / "leaf.pem").write_text(issued.certificate.certificate_pem)
    (tmp_path / "chain.pem").write_text("".join(pem(c) for c in issued.chain))
    (tmp_path / "root.pem").write_text(CORPORATE.root_pem())
    result = run_openssl(
        "verify",
        "-CAfile",
        str(tmp_path / "root.pem"),
        "-untrusted",
        str(tmp_path / "chain.pem"),
        "-attime",
        str(int((FRESH_EPOCH + dt.timedelta(hours=1)).timestamp())),
        str(tmp_path / "leaf.pem"),
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_a_foreign_parented_ca_revokes_publishes_its_crl_and_answers_ocsp(installed_pki: PKI) -> None:
    csr, _ = make_csr("SECC-FOREIGN-2", country="DE", dc="CPO")
    issued = installed_pki.certificates.issue(
        profile="secc", csr=csr, identity=RequestIdentity(secc_id="SECC-FOREIGN-2"), actor="test"
    )
    serial = issued.certificate.serial
    installed_pki.revocation.revoke(serial, "keyCompromise", ca_id="cpo-sub2", actor="test")
    crl = x509.load_der_x509_crl(installed_pki.crls.current("cpo-sub2").der)
    assert crl.get_revoked_certificate_by_serial_number(int(serial, 16)) is not None
    cpo2 = x509.load_pem_x509_certificate(installed_pki.cas.get("cpo-sub2").certificate_pem.encode())
    assert crl.is_signature_valid(cpo2.public_key())  # type: ignore[arg-type]
    leaf = x509.load_pem_x509_certificate(issued.certificate.certificate_pem.encode())
    request = ocsp.OCSPRequestBuilder().add_certificate(leaf, cpo2, hashes.SHA256()).build()
    answer = installed_pki.ocsp.respond(request.public_bytes(serialization.Encoding.DER))
    assert answer.status == "successful" and answer.cert_statuses == ("revoked",)
    # cpo-sub1 (under the external root) answers for the sub-CA it issued, through its delegated responder.
    cpo1 = x509.load_pem_x509_certificate(installed_pki.cas.get("cpo-sub1").certificate_pem.encode())
    request = ocsp.OCSPRequestBuilder().add_certificate(cpo2, cpo1, hashes.SHA256()).build()
    answer = installed_pki.ocsp.respond(request.public_bytes(serialization.Encoding.DER))
    assert answer.cert_statuses == ("good",)
    response = ocsp.load_der_ocsp_response(answer.der)
    responder = response.certificates[0]
    responder.verify_directly_issued_by(cpo1)


def test_audit_chain_holds_the_request_and_the_install(installed_pki: PKI) -> None:
    assert len(installed_pki.audit.records(action="ca-request")) == 3
    installed = installed_pki.audit.records(action="ca-install")
    assert [record.ca_id for record in installed] == ["cpo-sub1", "cps-sub1", "cso-sub"]
    assert installed_pki.audit.verify().ok


def test_a_ca_under_an_external_parent_rolls_over_by_a_new_request(tmp_path: Path) -> None:
    pki, name = open_awaiting(tmp_path)
    try:
        install_all(pki)
        successor = pki.cas.rollover("cps-sub1", actor="test")
        assert successor == "cps-sub1-2"
        assert pki.cas.request(successor).successor_of == "cps-sub1"
        with pytest.raises(Conflict, match="already awaits"):
            pki.cas.rollover("cps-sub1", actor="test")
        # Until the successor is installed, the old generation keeps serving.
        assert "cps-leaf" in pki.cas.get("cps-sub2").issues
        request = pki.cas.request(successor).csr_pem
        assert (
            x509.load_pem_x509_csr(request.encode())
            .subject.rfc4514_string()
            .endswith("CN=Prov Sub-CA 1 G2,O=" + ORG + ",C=DE")
        )
        report = pki.cas.install(successor, pem(V2G.sign(request)), actor="test")
        assert report.ca.external_parent
        assert not pki.cas.get("cps-sub2").issues and pki.cas.get("cps-sub2-2").issues == ("cps-leaf",)
        assert pki.cas.get("cps-sub2-2").parent_id == successor
        # The CPS leaf has a successor under the new generation; its chain ends below the same V2G root.
        leaves = [c for c in pki.certificates.list(CertificateFilter(ca_id="cps-sub2-2")) if c.label == "cps-leaf"]
        assert len(leaves) == 1
        assert [c.subject for c in pki.cas.chain("cps-sub2-2")][-1] == x509.load_pem_x509_csr(request.encode()).subject
    finally:
        pki.close()
        drop_database(name)
