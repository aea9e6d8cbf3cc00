"""``evpki init``: the default hierarchy, idempotent re-runs, custom hierarchy files, key files at rest.

Read-only checks use the session PKI; custom hierarchies get one module-scoped PKI per file;
invalid files are tried against one never-initialised PKI (they must leave it empty).
"""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from importlib import resources
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed448, rsa
from cryptography.x509.oid import AuthorityInformationAccessOID

from pki import PKI, Conflict, InvalidInput, PolicyViolation, RequestIdentity, Settings, Unavailable
from pki.store.repository import CertificateFilter
from tests.conftest import DEFAULT_CA_IDS, ORG
from tests.pki.builders import open_pki
from tests.pki.openssl_req import openssl_csr

CA_IDS = DEFAULT_CA_IDS
MANAGED_LEAVES = {"cps-leaf", "firmware-signer", "csms-server"}
PUBLIC_URL = "http://127.0.0.1:8080"
SECC_ID = "DE*ABC*S*EVSE0001CONTROLLER00000000000000001"


def _default_toml() -> str:
    return (resources.files("pki") / "default_hierarchy.toml").read_text(encoding="utf-8")


def _with_pki(toml: str, name: str, standard: str, algorithm: str) -> str:
    """The TOML with ``[pki.<name>]``'s standard and algorithm replaced (the default lists both first)."""
    head, _, tail = toml.partition(f"[pki.{name}]")
    body = tail.split("\n[", 1)
    replaced = f'\nstandard = "{standard}"\nalgorithm = "{algorithm}"\n'
    return f"{head}[pki.{name}]{replaced}\n[{body[1]}"


def _all_certificates(pki: PKI) -> list[x509.Certificate]:
    return [
        x509.load_pem_x509_certificate(v.certificate_pem.encode()) for v in pki.certificates.list(CertificateFilter())
    ]


# -- the default hierarchy -------------------------------------------------------------------------


def test_init_creates_every_ca_of_the_design(pki: PKI) -> None:
    assert {ca.id for ca in pki.cas.list()} == CA_IDS


def test_init_creates_the_three_managed_leaves(pki: PKI) -> None:
    # OCSP responder certificates (labels ocsp-<ca>) appear on demand once other tests ask OCSP.
    labels = {v.label for v in pki.certificates.list(CertificateFilter()) if v.label and v.profile != "ocsp-responder"}
    assert labels == MANAGED_LEAVES


def test_init_records_the_organization(pki: PKI) -> None:
    assert pki.cas.organization() == ORG


def test_sub_cas_chain_to_the_roots_of_the_design(pki: PKI) -> None:
    parents = {ca.id: ca.parent_id for ca in pki.cas.list()}
    assert parents["cso-sub"] == "cso-root"
    assert parents["cpo-sub2"] == "cpo-sub1" and parents["cpo-sub1"] == "v2g-root"
    assert parents["cps-sub2"] == "cps-sub1" and parents["cps-sub1"] == "v2g-root"
    assert parents["mo-sub2"] == "mo-sub1" and parents["oem-sub2"] == "oem-sub1"
    assert parents["mf-root"] is None  # OCPP L01: firmware signer directly under the manufacturer root


def test_every_non_root_certificate_has_aia_ocsp_and_crl_distribution_point(pki: PKI) -> None:
    """ISO 15118-2 certificates are the exception: compact, OCSP only (see the next test)."""
    checked = 0
    for view in pki.certificates.list(CertificateFilter()):
        certificate = x509.load_pem_x509_certificate(view.certificate_pem.encode())
        if certificate.issuer == certificate.subject:
            continue
        aia = certificate.extensions.get_extension_for_class(x509.AuthorityInformationAccess).value
        ocsp = [d.access_location.value for d in aia if d.access_method == AuthorityInformationAccessOID.OCSP]
        assert ocsp == [f"{PUBLIC_URL}/ocsp"]
        if pki.cas.get(view.issuer_id).standard == "iso15118-2":
            continue
        cdp = certificate.extensions.get_extension_for_class(x509.CRLDistributionPoints).value
        assert [n.value for point in cdp for n in point.full_name or []] == [f"{PUBLIC_URL}/crl/{view.issuer_id}.crl"]
        checked += 1
    assert checked >= 3  # cso-sub, the firmware signer, the CSMS server at least


def test_iso15118_2_certificates_are_compact(pki: PKI) -> None:
    """8-byte key identifiers, no CRL pointers, at most 800 bytes (V2G_CI_MsgDataTypes.xsd certificateType)."""
    checked = 0
    for view in pki.certificates.list(CertificateFilter()):
        if pki.cas.get(view.issuer_id).standard != "iso15118-2":
            continue
        certificate = x509.load_pem_x509_certificate(view.certificate_pem.encode())
        assert len(certificate.public_bytes(serialization.Encoding.DER)) <= 800
        ski = certificate.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value.digest
        assert len(ski) == 8 and ski[0] >> 4 == 0b0100  # RFC 5280 §4.2.1.2 method (2)
        types = {type(e.value) for e in certificate.extensions}
        assert x509.CRLDistributionPoints not in types and x509.FreshestCRL not in types
        if certificate.issuer != certificate.subject:
            aki = certificate.extensions.get_extension_for_class(x509.AuthorityKeyIdentifier).value
            assert aki.key_identifier is not None and len(aki.key_identifier) == 8
        checked += 1
    assert checked >= 10  # the V2G, MO and OEM sub-CAs and the CPS leaf


def test_roots_carry_no_aia_and_no_crl_distribution_point(pki: PKI) -> None:
    for ca in pki.cas.list():
        if ca.parent_id is None:
            certificate = x509.load_pem_x509_certificate(ca.certificate_pem.encode())
            extension_types = {type(e.value) for e in certificate.extensions}
            assert x509.AuthorityInformationAccess not in extension_types
            assert x509.CRLDistributionPoints not in extension_types


def test_key_files_are_private_and_encrypted(pki: PKI) -> None:
    files = sorted(pki.settings.keys_dir.glob("*.key.pem"))
    responders = [path for path in files if path.name.startswith("ocsp-")]  # issued on demand
    assert len(files) - len(responders) == len(CA_IDS) + len(MANAGED_LEAVES)
    for path in files:
        assert stat.S_IMODE(path.stat().st_mode) == 0o600, path.name
        assert path.read_bytes().startswith(b"-----BEGIN ENCRYPTED PRIVATE KEY-----"), path.name
    assert stat.S_IMODE(pki.settings.keys_dir.stat().st_mode) == 0o700


def _key_state(pki: PKI) -> dict[str, tuple[int, int, bytes]]:
    return {
        path.name: (path.stat().st_ino, path.stat().st_mtime_ns, path.read_bytes())
        for path in pki.settings.keys_dir.iterdir()
    }


def test_rerunning_init_keeps_every_ca_leaf_and_key_file(pki: PKI) -> None:
    cas_before = {ca.id: ca.sha256 for ca in pki.cas.list()}
    leaves_before = {v.label: v.sha256 for v in pki.certificates.list(CertificateFilter()) if v.label}
    keys_before = _key_state(pki)
    report = pki.cas.init(organization=ORG, actor="test")
    assert report.created == ()
    assert set(report.kept) == CA_IDS | MANAGED_LEAVES
    assert {ca.id: ca.sha256 for ca in pki.cas.list()} == cas_before
    assert {v.label: v.sha256 for v in pki.certificates.list(CertificateFilter()) if v.label} == leaves_before
    assert _key_state(pki) == keys_before


def test_rerunning_init_without_org_uses_the_stored_one(pki: PKI) -> None:
    assert pki.cas.init(actor="test").organization == ORG


def test_an_existing_key_file_is_never_replaced(pki: PKI) -> None:
    before = _key_state(pki)
    with pytest.raises(Conflict):
        pki._ctx.keys.generate("ca-cso-root", "ec-p256")
    assert _key_state(pki) == before


def test_init_with_another_organization_is_a_conflict(pki: PKI) -> None:
    before = {ca.id: ca.sha256 for ca in pki.cas.list()}
    with pytest.raises(Conflict):
        pki.cas.init(organization="Another CSO AG", actor="test")
    assert pki.cas.organization() == ORG
    assert {ca.id: ca.sha256 for ca in pki.cas.list()} == before


def test_a_wrong_key_passphrase_is_unavailable(session_home: tuple[Path, str], pki: PKI) -> None:
    home, url = session_home
    settings = Settings(home=home, database_url=url, key_passphrase="not the passphrase!", public_url=PUBLIC_URL)  # type: ignore[arg-type]
    other = PKI.open(settings, migrate=False)
    try:
        station = "CPWRONGPASS01"
        csr, _ = openssl_csr(f"/O={ORG}/CN={station}")
        with pytest.raises(Unavailable):
            other.certificates.issue(profile="station", csr=csr, identity=RequestIdentity(station_id=station))
    finally:
        other.close()


# -- custom hierarchies (ISO 15118-20, RSA CSO) ------------------------------------------------------


@pytest.fixture(scope="module", params=["ec-p521", "ed448"])
def custom_pki(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[PKI]:
    home = tmp_path_factory.mktemp(f"custom-{request.param}")
    toml = _with_pki(_default_toml(), "v2g", "iso15118-20", request.param)
    toml = _with_pki(toml, "cso", "ocpp", "rsa-3072")
    config = home / "hierarchy.toml"
    config.write_text(toml, encoding="utf-8")
    with open_pki(home, config=config) as instance:
        yield instance


def _public_key(pki: PKI, ca_id: str) -> object:
    return x509.load_pem_x509_certificate(pki.cas.get(ca_id).certificate_pem.encode()).public_key()


def test_custom_hierarchy_uses_the_configured_algorithms(custom_pki: PKI) -> None:
    v2g_key = _public_key(custom_pki, "v2g-root")
    if custom_pki.cas.get("v2g-root").standard != "iso15118-20":
        pytest.fail("v2g is not ISO 15118-20")
    assert isinstance(v2g_key, ec.EllipticCurvePublicKey | ed448.Ed448PublicKey)
    if isinstance(v2g_key, ec.EllipticCurvePublicKey):
        assert v2g_key.curve.name == "secp521r1"
    cso_key = _public_key(custom_pki, "cso-root")
    assert isinstance(cso_key, rsa.RSAPublicKey) and cso_key.key_size == 3072
    assert {ca.id for ca in custom_pki.cas.list()} == CA_IDS


def test_iso15118_20_secc_with_p256_key_is_refused(custom_pki: PKI) -> None:
    csr, _ = openssl_csr(f"/C=DE/O={ORG}/CN={SECC_ID}/DC=CPO", key="ec-p256")
    with pytest.raises(PolicyViolation) as caught:
        custom_pki.certificates.issue(profile="secc", csr=csr, identity=RequestIdentity(secc_id=SECC_ID))
    assert caught.value.rule == "key.iso15118-20"


@pytest.mark.parametrize("key", ["ec-p521", "ed448"])
def test_iso15118_20_secc_with_p521_or_ed448_key_is_issued(custom_pki: PKI, key: str) -> None:
    csr, _ = openssl_csr(f"/C=DE/O={ORG}/CN={SECC_ID}/DC=CPO", key=key)
    issued = custom_pki.certificates.issue(profile="secc", csr=csr, identity=RequestIdentity(secc_id=SECC_ID))
    assert issued.certificate.issuer_id == "cpo-sub2"


def test_ed448_secc_certificate_asserts_no_key_agreement(custom_pki: PKI) -> None:
    csr, _ = openssl_csr(f"/C=DE/O={ORG}/CN={SECC_ID}/DC=CPO", key="ed448")
    issued = custom_pki.certificates.issue(profile="secc", csr=csr, identity=RequestIdentity(secc_id=SECC_ID))
    certificate = x509.load_pem_x509_certificate(issued.certificate.certificate_pem.encode())
    usage = certificate.extensions.get_extension_for_class(x509.KeyUsage).value
    # RFC 9295 §3 (updating RFC 8410 §5): an Ed448 end-entity key MUST NOT assert keyAgreement.
    assert usage.digital_signature
    assert not usage.key_agreement
    assert not usage.key_encipherment


def test_rsa_station_certificate_uses_key_encipherment(custom_pki: PKI) -> None:
    csr, _ = openssl_csr(f"/O={ORG}/CN=CPRSA0001", key="rsa-2048")
    issued = custom_pki.certificates.issue(profile="station", csr=csr, identity=RequestIdentity(station_id="CPRSA0001"))
    certificate = x509.load_pem_x509_certificate(issued.certificate.certificate_pem.encode())
    usage = certificate.extensions.get_extension_for_class(x509.KeyUsage).value
    assert usage.digital_signature and usage.key_encipherment and not usage.key_agreement


# -- invalid hierarchy files -----------------------------------------------------------------------

_MINIMAL = """
organization = "Minimal CSO"
[pki.cso]
standard = "ocpp"
algorithm = "ec-p256"
[ca.root]
pki = "cso"
subject = { CN = "Minimal Root" }
validity = "10y"
[ca.sub]
pki = "cso"
parent = "root"
path_length = 0
subject = { CN = "Minimal Sub" }
validity = "5y"
issues = ["station"]
"""

_INVALID = {
    "bad-toml": "organization = \n[pki.cso",
    "unknown-parent": _MINIMAL.replace('parent = "root"', 'parent = "nowhere"'),
    "path-length-violation": _MINIMAL
    + '[ca.subsub]\npki = "cso"\nparent = "sub"\nsubject = { CN = "Too Deep" }\nvalidity = "1y"\n',
    "iso15118-2-with-rsa": _MINIMAL.replace(
        'standard = "ocpp"\nalgorithm = "ec-p256"', 'standard = "iso15118-2"\nalgorithm = "rsa-2048"'
    ),
    "unknown-standard": _MINIMAL.replace('standard = "ocpp"', 'standard = "iso15118-99"'),
    "unknown-issued-profile": _MINIMAL.replace('issues = ["station"]', 'issues = ["toaster"]'),
    "ca-profile-issued": _MINIMAL.replace('issues = ["station"]', 'issues = ["sub-ca"]'),
    "bad-validity": _MINIMAL.replace('validity = "5y"', 'validity = "five years"'),
    "bad-country": _MINIMAL.replace('{ CN = "Minimal Root" }', '{ C = "Germany", CN = "Minimal Root" }'),
    "leaf-unknown-issuer": _MINIMAL
    + '[leaf.x]\nprofile = "station"\nissuer = "nowhere"\nsubject = { CN = "X" }\nvalidity = "1y"\n',
    "leaf-profile-not-issued": _MINIMAL
    + '[leaf.x]\nprofile = "csms-server"\nissuer = "sub"\nsubject = { CN = "x" }\nvalidity = "1y"\n',
    "iso15118-2-leaf-with-rsa": _MINIMAL.replace(
        '[pki.cso]\nstandard = "ocpp"',
        '[pki.v2g]\nstandard = "iso15118-2"\nalgorithm = "ec-p256"\n[pki.cso]\nstandard = "ocpp"',
    )
    + '[ca.v2g]\npki = "v2g"\nsubject = { CN = "V2G" }\nvalidity = "10y"\nissues = ["cps-leaf"]\n'
    + '[leaf.cps]\nprofile = "cps-leaf"\nissuer = "v2g"\nsubject = { CN = "CPS", DC = "CPS" }\n'
    + 'validity = "1y"\nalgorithm = "rsa-2048"\n',
}


@pytest.fixture(scope="module")
def blank_pki(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PKI]:
    with open_pki(tmp_path_factory.mktemp("blank"), init=False) as instance:
        yield instance


def test_minimal_hierarchy_is_valid(tmp_path: Path) -> None:
    from pki.ca.hierarchy import load_hierarchy

    config = tmp_path / "minimal.toml"
    config.write_text(_MINIMAL, encoding="utf-8")
    spec = load_hierarchy(config)
    assert [ca.id for ca in spec.cas] == ["root", "sub"]


@pytest.mark.parametrize("name", sorted(_INVALID))
def test_invalid_hierarchy_is_invalid_input_and_creates_nothing(blank_pki: PKI, tmp_path: Path, name: str) -> None:
    config = tmp_path / f"{name}.toml"
    config.write_text(_INVALID[name], encoding="utf-8")
    with pytest.raises(InvalidInput):
        blank_pki.cas.init(config=config, actor="test")
    assert blank_pki.cas.list() == []
    assert blank_pki.cas.organization() is None
    assert blank_pki.audit.count() == 0
    keys_dir = blank_pki.settings.keys_dir
    assert not keys_dir.exists() or not any(keys_dir.iterdir())


def test_missing_hierarchy_file_is_invalid_input(blank_pki: PKI, tmp_path: Path) -> None:
    with pytest.raises(InvalidInput):
        blank_pki.cas.init(config=tmp_path / "absent.toml", actor="test")
    assert blank_pki.cas.list() == []


def test_key_dir_is_created_private(tmp_path: Path) -> None:
    # Guard for the mode assertions above: the umask must not be what makes them pass.
    old = os.umask(0)
    try:
        from pki.keys.file import FileKeyStore

        store = FileKeyStore(tmp_path / "keys", b"a passphrase of some length")
        store.generate("probe", "ec-p256")
    finally:
        os.umask(old)
    assert stat.S_IMODE((tmp_path / "keys").stat().st_mode) == 0o700
    assert stat.S_IMODE((tmp_path / "keys" / "probe.key.pem").stat().st_mode) == 0o600
