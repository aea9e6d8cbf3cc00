"""The committed reference PKI in ``test_certs/``, checked by openssl and by a fresh evpki instance.

openssl (an independent validator) must accept every chain, CRL and key that
``test_certs/generate.py`` wrote; every CSR listed in ``MANIFEST.json`` must get exactly the
outcome the manifest states when a fresh test PKI is asked to issue it.
"""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Any

import pytest

from pki import PKI, PolicyViolation, RequestIdentity
from pki.store.repository import CertificateFilter
from tests.conftest import ORG, TEST_PASSPHRASE, requires_openssl, run_openssl

pytestmark = pytest.mark.interop

CERTS = Path(__file__).resolve().parents[2] / "test_certs"
MANIFEST: dict[str, Any] = json.loads((CERTS / "MANIFEST.json").read_text())
FILES: dict[str, dict[str, Any]] = MANIFEST["files"]
# Every check runs "as of" generation time, so short-lived leaves (90-day CSMS, 60-day SECC)
# and 7-day CRLs keep verifying long after the files were committed.
AT_TIME = str(int(dt.datetime.fromisoformat(MANIFEST["generated_at"]).timestamp()))
_UNENCRYPTED_KEY_MARKERS = ("BEGIN PRIVATE KEY", "BEGIN EC PRIVATE KEY", "BEGIN RSA PRIVATE KEY")


def _of_kind(kind: str) -> list[str]:
    return sorted(name for name, entry in FILES.items() if entry["kind"] == kind)


def _path(name: str) -> str:
    return str(CERTS / name)


def _ok(result: Any) -> str:
    output = f"{result.stdout}{result.stderr}"
    assert result.returncode == 0, output
    return output


def test_manifest_lists_every_file_and_nothing_else() -> None:
    on_disk = {str(path.relative_to(CERTS)) for path in CERTS.rglob("*") if path.is_file() and path.suffix == ".pem"}
    assert on_disk == set(FILES)


def test_manifest_matches_the_test_fixtures() -> None:
    # The csr/ vectors carry O = ORG; a fresh_pki for another organisation would refuse them all.
    assert MANIFEST["passphrase"] == TEST_PASSPHRASE
    assert MANIFEST["organization"] == ORG


@requires_openssl
@pytest.mark.parametrize("leaf", _of_kind("leaf-certificate"))
def test_openssl_verifies_leaf_chain_to_its_root(leaf: str) -> None:
    entry = FILES[leaf]
    result = run_openssl(
        "verify",
        "-x509_strict",
        "-attime",
        AT_TIME,
        "-CAfile",
        _path(f"cas/{entry['root']}.pem"),
        "-untrusted",
        _path(entry["chain"]),
        _path(leaf),
    )
    assert f"{_path(leaf)}: OK" in _ok(result)


@requires_openssl
@pytest.mark.parametrize("ca", _of_kind("ca-certificate"))
def test_openssl_verifies_ca_certificate_to_its_root(ca: str, tmp_path: Path) -> None:
    intermediates = []
    parent = FILES[ca]["parent"]
    while parent is not None and FILES[f"cas/{parent}.pem"]["parent"] is not None:
        intermediates.append((CERTS / f"cas/{parent}.pem").read_text())
        parent = FILES[f"cas/{parent}.pem"]["parent"]
    untrusted = tmp_path / "untrusted.pem"
    untrusted.write_text("".join(intermediates) or (CERTS / ca).read_text())
    result = run_openssl(
        "verify",
        "-x509_strict",
        "-attime",
        AT_TIME,
        "-CAfile",
        _path(f"cas/{FILES[ca]['root']}.pem"),
        "-untrusted",
        str(untrusted),
        _path(ca),
    )
    assert f"{_path(ca)}: OK" in _ok(result)


@requires_openssl
@pytest.mark.parametrize("crl", _of_kind("crl"))
def test_openssl_verifies_crl_signature(crl: str) -> None:
    entry = FILES[crl]
    result = run_openssl("crl", "-verify", "-noout", "-CAfile", _path(entry["issuer_certificate"]), "-in", _path(crl))
    assert "verify OK" in _ok(result)


@requires_openssl
def test_cso_sub_crl_lists_the_revoked_station() -> None:
    revoked = FILES["leaves/station-revoked.pem"]
    assert revoked["crl"] == "crl/cso-sub.crl.pem"
    text = _ok(run_openssl("crl", "-noout", "-text", "-in", _path("crl/cso-sub.crl.pem")))
    assert f"Serial Number: {revoked['serial']}" in text
    assert "Key Compromise" in text
    assert FILES["crl/cso-sub.crl.pem"]["revoked_serials"] == [revoked["serial"]]


@requires_openssl
def test_openssl_rejects_the_revoked_station_with_crl_check() -> None:
    result = run_openssl(
        "verify",
        "-crl_check",
        "-attime",
        AT_TIME,
        "-CAfile",
        _path("cas/cso-root.pem"),
        "-untrusted",
        _path("cas/cso-sub.pem"),
        "-CRLfile",
        _path("crl/cso-sub.crl.pem"),
        _path("leaves/station-revoked.pem"),
    )
    assert result.returncode != 0
    assert "certificate revoked" in result.stdout + result.stderr


@requires_openssl
def test_openssl_accepts_the_unrevoked_station_with_crl_check() -> None:
    result = run_openssl(
        "verify",
        "-crl_check",
        "-attime",
        AT_TIME,
        "-CAfile",
        _path("cas/cso-root.pem"),
        "-untrusted",
        _path("cas/cso-sub.pem"),
        "-CRLfile",
        _path("crl/cso-sub.crl.pem"),
        _path("leaves/station.pem"),
    )
    assert f"{_path('leaves/station.pem')}: OK" in _ok(result)


@requires_openssl
@pytest.mark.parametrize("key", _of_kind("ca-key") + _of_kind("leaf-key"))
def test_key_opens_with_test_passphrase_and_matches_its_certificate(key: str) -> None:
    public_from_key = _ok(run_openssl("pkey", "-in", _path(key), "-passin", f"pass:{TEST_PASSPHRASE}", "-pubout"))
    public_from_certificate = _ok(run_openssl("x509", "-in", _path(FILES[key]["certificate"]), "-noout", "-pubkey"))
    assert "BEGIN PUBLIC KEY" in public_from_key
    assert public_from_key == public_from_certificate


@requires_openssl
@pytest.mark.parametrize("key", _of_kind("ca-key") + _of_kind("leaf-key"))
def test_key_does_not_open_with_a_wrong_passphrase(key: str) -> None:
    result = run_openssl("pkey", "-in", _path(key), "-passin", "pass:not-the-test-passphrase", "-noout")
    assert result.returncode != 0


def test_no_unencrypted_private_key_anywhere() -> None:
    for path in CERTS.rglob("*"):
        if path.is_file() and "__pycache__" not in path.parts:
            text = path.read_text(errors="replace")
            assert not any(marker in text for marker in _UNENCRYPTED_KEY_MARKERS), path


@requires_openssl
def test_bad_signature_vector_fails_openssl_self_signature_check() -> None:
    # The vector must be broken for an independent tool too, not just for evpki.
    result = run_openssl("req", "-verify", "-noout", "-in", _path("csr/bad-signature.csr.pem"))
    # openssl 3.0's `req -verify` exits 0 even when the check fails, so read its verdict instead.
    assert "verify failure" in result.stdout + result.stderr
    assert "verify OK" not in result.stdout + result.stderr


@requires_openssl
@pytest.mark.parametrize("csr", [name for name in _of_kind("csr") if name != "csr/bad-signature.csr.pem"])
def test_other_csr_vectors_pass_openssl_self_signature_check(csr: str) -> None:
    result = run_openssl("req", "-verify", "-noout", "-in", _path(csr))
    assert "verify OK" in _ok(result)


# The session PKI is enough: each case compares the certificate count before and after itself.
@pytest.mark.parametrize("csr", _of_kind("csr"))
def test_csr_gets_the_expected_outcome(csr: str, pki: PKI) -> None:
    entry = FILES[csr]
    identity = RequestIdentity(**entry["identity"])
    pem = (CERTS / csr).read_bytes()
    before = len(pki.certificates.list(CertificateFilter(limit=100_000)))
    if entry["expected"] == "accept":
        issued = pki.certificates.issue(profile=entry["profile"], csr=pem, identity=identity, actor="test")
        assert issued.certificate.profile == entry["profile"]
        assert len(pki.certificates.list(CertificateFilter(limit=100_000))) == before + 1
        return
    with pytest.raises(PolicyViolation) as refused:
        pki.certificates.issue(profile=entry["profile"], csr=pem, identity=identity, actor="test")
    assert refused.value.rule == entry["expected"]
    assert len(pki.certificates.list(CertificateFilter(limit=100_000))) == before
