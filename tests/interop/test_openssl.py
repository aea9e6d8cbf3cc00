"""What evpki issues, checked by OpenSSL: chains, CRLs, extensions per profile, TLS purposes.

OpenSSL is the second validator (STYLE.md): it shares no code with ``cryptography``'s builder,
so an encoding or extension mistake that our own parser forgives shows up here.
"""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization

from pki import PKI, RequestIdentity
from pki.runtime.views import pem
from pki.store.repository import CertificateFilter
from tests.conftest import DEFAULT_CA_IDS, ORG, requires_openssl, run_openssl
from tests.pki.openssl_req import openssl_csr

pytestmark = [pytest.mark.interop, requires_openssl]

PUBLIC_URL = "http://127.0.0.1:8080"
SECC_ID = "DE*ABC*S*EVSE0001CONTROLLER00000000000000002"


@dataclass(frozen=True)
class Chain:
    """A certificate with the files ``openssl verify`` needs: the root and the intermediates."""

    name: str
    issuer_id: str
    leaf: Path
    untrusted: Path | None
    root: Path

    def text(self) -> str:
        result = run_openssl("x509", "-in", str(self.leaf), "-noout", "-text")
        assert result.returncode == 0, result.stderr
        return result.stdout


def _write_chain(directory: Path, name: str, issuer_id: str, leaf_pem: str, cas: list[x509.Certificate]) -> Chain:
    """``cas`` is the issuer's chain, issuer first and root last (as ``PKI.ca_chain`` returns it)."""
    folder = directory / name
    folder.mkdir()
    (folder / "leaf.pem").write_text(leaf_pem)
    (folder / "root.pem").write_text(pem(cas[-1]))
    untrusted = None
    if len(cas) > 1:
        untrusted = folder / "chain.pem"
        untrusted.write_text("".join(pem(c) for c in cas[:-1]))
    return Chain(name, issuer_id, folder / "leaf.pem", untrusted, folder / "root.pem")


def _station_id() -> str:
    return f"CPI{uuid.uuid4().hex[:10].upper()}"


@pytest.fixture(scope="module")
def chains(pki: PKI, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Chain]:
    """One certificate of every profile, the init leaves and every CA, each with its chain on disk."""
    directory = tmp_path_factory.mktemp("openssl-chains")
    requests: dict[str, tuple[str, str, RequestIdentity, str]] = {}
    for name, key in (("station-ec", "ec-p256"), ("station-rsa", "rsa-2048")):
        station_id = _station_id()
        requests[name] = (
            "station",
            openssl_csr(f"/O={ORG}/CN={station_id}", key=key)[0],
            RequestIdentity(station_id=station_id),
            "cso-sub",
        )
    fqdn = "csms.interop.example.com"
    requests["csms-server"] = (
        "csms-server",
        openssl_csr(f"/O={ORG}/CN={fqdn}", san=f"DNS:{fqdn}")[0],
        RequestIdentity(fqdn=fqdn),
        "cso-sub",
    )
    requests["secc"] = (
        "secc",
        openssl_csr(f"/C=DE/O={ORG}/CN={SECC_ID}/DC=CPO")[0],
        RequestIdentity(secc_id=SECC_ID),
        "cpo-sub2",
    )
    requests["contract"] = (
        "contract",
        openssl_csr("/CN=DEABC987654321/DC=MO")[0],
        RequestIdentity(emaid="DEABC987654321"),
        "mo-sub2",
    )
    requests["oem-provisioning"] = (
        "oem-provisioning",
        openssl_csr("/CN=WMI98765432109876/DC=OEM")[0],
        RequestIdentity(pcid="WMI98765432109876"),
        "oem-sub2",
    )
    result: dict[str, Chain] = {}
    for name, (profile, csr, identity, ca_id) in requests.items():
        issued = pki.certificates.issue(profile=profile, csr=csr, identity=identity, ca_id=ca_id)
        result[name] = _write_chain(directory, name, ca_id, issued.certificate.certificate_pem, pki.cas.chain(ca_id))
    for view in pki.certificates.list(CertificateFilter()):
        if view.label:
            result[f"init-{view.label}"] = _write_chain(
                directory, f"init-{view.label}", view.issuer_id, view.certificate_pem, pki.cas.chain(view.issuer_id)
            )
    for ca in pki.cas.list():
        ancestors = pki.cas.chain(ca.parent_id) if ca.parent_id else pki.cas.chain(ca.id)
        result[f"ca-{ca.id}"] = _write_chain(
            directory, f"ca-{ca.id}", ca.parent_id or ca.id, ca.certificate_pem, ancestors
        )
    return result


def _verify(chain: Chain, *extra: str) -> tuple[int, str]:
    untrusted = ("-untrusted", str(chain.untrusted)) if chain.untrusted else ()
    result = run_openssl("verify", "-x509_strict", *extra, "-CAfile", str(chain.root), *untrusted, str(chain.leaf))
    return result.returncode, result.stdout + result.stderr


_ALL = [
    "station-ec",
    "station-rsa",
    "csms-server",
    "secc",
    "contract",
    "oem-provisioning",
    "init-cps-leaf",
    "init-firmware-signer",
    "init-csms-server",
    *(f"ca-{ca}" for ca in sorted(DEFAULT_CA_IDS)),
]


@pytest.mark.parametrize("name", _ALL)
def test_openssl_verifies_the_chain_strictly(chains: dict[str, Chain], name: str) -> None:
    code, output = _verify(chains[name])
    assert code == 0, output
    assert output.strip().endswith(": OK"), output


def test_openssl_accepts_station_certificate_for_tls_client_auth(chains: dict[str, Chain]) -> None:
    for name in ("station-ec", "station-rsa"):
        code, output = _verify(chains[name], "-purpose", "sslclient")
        assert code == 0, output


@pytest.mark.parametrize("name", ["csms-server", "init-csms-server"])
def test_openssl_accepts_csms_certificate_for_tls_server_auth(chains: dict[str, Chain], name: str) -> None:
    code, output = _verify(chains[name], "-purpose", "sslserver")
    assert code == 0, output


def test_openssl_refuses_a_station_certificate_under_the_wrong_root(chains: dict[str, Chain]) -> None:
    wrong = Chain(
        "wrong", "cso-sub", chains["station-ec"].leaf, chains["station-ec"].untrusted, chains["ca-v2g-root"].root
    )
    code, _ = _verify(wrong)
    assert code != 0


# -- extensions per profile ----------------------------------------------------------------------


def _extension_block(text: str, title: str) -> str | None:
    """The lines of one extension in ``openssl x509 -text`` output: the title line and its values."""
    match = re.search(rf"^( +){re.escape(title)}:( critical)? ?\n((?:\1 +.*\n)+)", text, re.MULTILINE)
    if match is None:
        return None
    return f"{title}:{match.group(2) or ''}\n{match.group(3)}"


def _assert_leaf_basics(text: str, issuer_id: str) -> None:
    assert "CA:FALSE" in (_extension_block(text, "X509v3 Basic Constraints") or "")
    assert (_extension_block(text, "X509v3 Basic Constraints") or "").startswith("X509v3 Basic Constraints: critical")
    aia = _extension_block(text, "Authority Information Access") or ""
    assert f"OCSP - URI:{PUBLIC_URL}/ocsp" in aia
    _assert_crl_pointers(text, issuer_id)


# The default hierarchy's ISO 15118-2 CAs: their certificates are compact (OCSP only, 8-byte key ids).
_ISO15118_2_CAS = frozenset(
    {"v2g-root", "cpo-sub1", "cpo-sub2", "cps-sub1", "cps-sub2", "mo-root", "mo-sub1", "mo-sub2"}
    | {"oem-root", "oem-sub1", "oem-sub2"}
)


def _assert_crl_pointers(text: str, issuer_id: str) -> None:
    cdp = _extension_block(text, "X509v3 CRL Distribution Points") or ""
    if issuer_id in _ISO15118_2_CAS:
        assert cdp == "" and "Freshest CRL" not in text
        ski = (_extension_block(text, "X509v3 Subject Key Identifier") or "").split("\n", 1)[1].strip()
        assert len(ski.split(":")) == 8  # RFC 5280 §4.2.1.2 method (2)
    else:
        assert f"URI:{PUBLIC_URL}/crl/{issuer_id}.crl" in cdp


def _key_usage(text: str) -> str:
    block = _extension_block(text, "X509v3 Key Usage")
    assert block is not None and block.startswith("X509v3 Key Usage: critical")
    return block.split("\n", 1)[1].strip()


@pytest.mark.parametrize(
    ("name", "usage"),
    [("station-ec", "Digital Signature, Key Agreement"), ("station-rsa", "Digital Signature, Key Encipherment")],
)
def test_station_certificate_extensions(chains: dict[str, Chain], name: str, usage: str) -> None:
    text = chains[name].text()
    _assert_leaf_basics(text, "cso-sub")
    assert _key_usage(text) == usage
    assert "Extended Key Usage" not in text  # OCPP A00.FR.514
    assert "Subject Alternative Name" not in text  # OCPP A00.FR.511


@pytest.mark.parametrize(
    ("name", "usage"),
    [
        ("secc", "Digital Signature, Key Agreement"),
        ("contract", "Digital Signature, Key Agreement"),
        ("oem-provisioning", "Digital Signature, Key Agreement"),
        ("init-cps-leaf", "Digital Signature"),
        ("init-firmware-signer", "Digital Signature"),
    ],
)
def test_iso15118_and_signer_leaves_carry_no_extended_key_usage(
    chains: dict[str, Chain], name: str, usage: str
) -> None:
    chain = chains[name]
    text = chain.text()
    _assert_leaf_basics(text, chain.issuer_id)
    assert _key_usage(text) == usage
    assert "Extended Key Usage" not in text


def test_csms_server_certificate_has_san_and_server_auth(chains: dict[str, Chain]) -> None:
    text = chains["csms-server"].text()
    _assert_leaf_basics(text, "cso-sub")
    assert "DNS:csms.interop.example.com" in (_extension_block(text, "X509v3 Subject Alternative Name") or "")
    assert "TLS Web Server Authentication" in (_extension_block(text, "X509v3 Extended Key Usage") or "")
    assert "Subject: O = Test CSO GmbH, CN = csms.interop.example.com" in text  # OCPP A00.FR.510


@pytest.mark.parametrize(
    ("ca_id", "path_length"),
    [
        ("cso-sub", 0),
        ("cpo-sub1", 1),
        ("cpo-sub2", 0),
        ("cps-sub1", 1),
        ("cps-sub2", 0),
        ("mo-sub1", 1),
        ("mo-sub2", 0),
        ("oem-sub1", 1),
        ("oem-sub2", 0),
    ],
)
def test_sub_ca_certificate_extensions(chains: dict[str, Chain], ca_id: str, path_length: int) -> None:
    chain = chains[f"ca-{ca_id}"]
    text = chain.text()
    basic = _extension_block(text, "X509v3 Basic Constraints") or ""
    assert basic.startswith("X509v3 Basic Constraints: critical")
    assert f"CA:TRUE, pathlen:{path_length}" in basic
    assert _key_usage(text) == "Certificate Sign, CRL Sign"
    assert "Extended Key Usage" not in text
    assert f"OCSP - URI:{PUBLIC_URL}/ocsp" in text
    _assert_crl_pointers(text, chain.issuer_id)


@pytest.mark.parametrize("ca_id", ["cso-root", "mf-root", "v2g-root", "mo-root", "oem-root"])
def test_root_certificate_extensions(chains: dict[str, Chain], ca_id: str) -> None:
    text = chains[f"ca-{ca_id}"].text()
    basic = _extension_block(text, "X509v3 Basic Constraints") or ""
    assert basic.startswith("X509v3 Basic Constraints: critical")
    assert basic.split("\n", 1)[1].strip() == "CA:TRUE"  # no pathLen on a root (iso15118.md §1.2)
    assert _key_usage(text) == "Certificate Sign, CRL Sign"
    assert "Subject Key Identifier" in text
    assert "Authority Information Access" not in text
    assert "CRL Distribution Points" not in text


# -- CRLs ------------------------------------------------------------------------------------------


def _revoked_station_serials(pki: PKI, count: int) -> list[str]:
    serials = []
    for reason in ("keyCompromise", "certificateHold", "cessationOfOperation")[:count]:
        station_id = _station_id()
        csr = openssl_csr(f"/O={ORG}/CN={station_id}")[0]
        issued = pki.certificates.issue(profile="station", csr=csr, identity=RequestIdentity(station_id=station_id))
        pki.revocation.revoke(issued.certificate.serial, reason, ca_id="cso-sub")
        serials.append(issued.certificate.serial)
    return serials


@pytest.fixture(scope="module")
def cso_sub_crl(pki: PKI, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, list[str]]:
    serials = _revoked_station_serials(pki, 3)
    directory = tmp_path_factory.mktemp("openssl-crl")
    crl_path = directory / "cso-sub.crl"
    crl_path.write_bytes(pki.crls.generate("cso-sub").der)
    issuer_path = directory / "cso-sub.pem"
    issuer_path.write_text(pki.cas.get("cso-sub").certificate_pem)
    return crl_path, issuer_path, serials


def test_openssl_verifies_the_crl_signature(cso_sub_crl: tuple[Path, Path, list[str]]) -> None:
    crl_path, issuer_path, _ = cso_sub_crl
    result = run_openssl(
        "crl", "-inform", "DER", "-in", str(crl_path), "-CAfile", str(issuer_path), "-verify", "-noout"
    )
    assert result.returncode == 0, result.stderr
    assert "verify OK" in result.stderr + result.stdout


def test_openssl_refuses_a_crl_against_another_issuer(pki: PKI, cso_sub_crl: tuple[Path, Path, list[str]]) -> None:
    crl_path, issuer_path, _ = cso_sub_crl
    other = issuer_path.with_name("mo-sub2.pem")
    other.write_text(pki.cas.get("mo-sub2").certificate_pem)
    result = run_openssl("crl", "-inform", "DER", "-in", str(crl_path), "-CAfile", str(other), "-verify", "-noout")
    assert "verify OK" not in result.stderr + result.stdout


def test_openssl_lists_every_revoked_serial_with_its_reason(cso_sub_crl: tuple[Path, Path, list[str]]) -> None:
    crl_path, _, serials = cso_sub_crl
    result = run_openssl("crl", "-inform", "DER", "-in", str(crl_path), "-noout", "-text")
    assert result.returncode == 0, result.stderr
    listed = set(re.findall(r"Serial Number: ([0-9A-F]+)", result.stdout))
    assert set(serials) <= listed
    assert "Key Compromise" in result.stdout
    assert "Certificate Hold" in result.stdout
    assert "Cessation Of Operation" in result.stdout
    assert "X509v3 CRL Number" in result.stdout


@pytest.mark.parametrize("ca_id", ["mf-root", "cpo-sub2", "mo-sub2"])
def test_openssl_verifies_an_empty_crl(pki: PKI, tmp_path: Path, ca_id: str) -> None:
    crl_path = tmp_path / f"{ca_id}.crl"
    crl_path.write_bytes(pki.crls.generate(ca_id).der)
    issuer_path = tmp_path / f"{ca_id}.pem"
    issuer_path.write_text(pki.cas.get(ca_id).certificate_pem)
    result = run_openssl(
        "crl", "-inform", "DER", "-in", str(crl_path), "-CAfile", str(issuer_path), "-verify", "-noout"
    )
    assert result.returncode == 0, result.stderr
    assert "verify OK" in result.stderr + result.stdout


def test_crl_der_round_trips_through_openssl(cso_sub_crl: tuple[Path, Path, list[str]]) -> None:
    crl_path, _, _ = cso_sub_crl
    result = run_openssl("crl", "-inform", "DER", "-in", str(crl_path), "-outform", "PEM")
    assert result.returncode == 0, result.stderr
    reparsed = x509.load_pem_x509_crl(result.stdout.encode())
    assert reparsed.public_bytes(serialization.Encoding.DER) == crl_path.read_bytes()
