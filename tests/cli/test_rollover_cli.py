"""``evpki ca rollover`` of every root, and ``evpki firmware sign`` after ``evpki ca rollover mf-root``."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pytest
from cryptography import x509

from pki import PKI
from pki.store.repository import CertificateFilter
from tests.cli.test_firmware_cli import LOCATION, assert_one_line_error, env, firmware, invoke, sign_json, write_pair

__all__ = ["env", "firmware"]  # the fixtures, re-used from the firmware CLI tests

ROOTS = ("cso-root", "mf-root", "v2g-root", "mo-root", "oem-root")
# What each root's new generation issues, and the managed leaves it re-issues.
EXPECTED = {
    "cso-root": ({"cso-sub-2": ["station", "csms-server"]}, {"csms-server"}),
    "mf-root": ({"mf-root-2": ["firmware-signer"]}, {"firmware-signer"}),
    "v2g-root": ({"cpo-sub2-2": ["secc"], "cps-sub2-2": ["cps-leaf"]}, {"cps-leaf"}),
    "mo-root": ({"mo-sub2-2": ["contract"]}, set()),
    "oem-root": ({"oem-sub2-2": ["oem-provisioning"]}, set()),
}


def _signer_ca(pki: PKI, signed: dict) -> str:  # type: ignore[type-arg]
    """The CA that issued the signing certificate of a ``firmware sign --json`` answer."""
    issuer = x509.load_pem_x509_certificate(signed["signingCertificate"].encode()).issuer
    (ca,) = [
        ca for ca in pki.cas.list() if x509.load_pem_x509_certificate(ca.certificate_pem.encode()).subject == issuer
    ]
    return ca.id


def _rollover(root_id: str) -> dict:  # type: ignore[type-arg]
    result = invoke("ca", "rollover", root_id, "--json")
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def _valid_now(pki: PKI, label: str) -> bool:
    """Whether the managed leaf ``label`` is valid at the real time the CLI runs at (the 90-day CSMS
    server leaf of the test template may have expired; an expired leaf gets no successor)."""
    now = dt.datetime.now(dt.UTC)
    views = pki.certificates.list(CertificateFilter(profile=None))
    return any(view.label == label and view.not_before <= now < view.not_after for view in views)


@pytest.mark.parametrize("root_id", ROOTS)
def test_rollover_prints_the_new_generation(env: Path, fresh_pki: PKI, root_id: str) -> None:
    issuing, leaves = EXPECTED[root_id]
    current = {label for label in leaves if _valid_now(fresh_pki, label)}
    report = _rollover(root_id)
    assert report["root"] == f"{root_id}-2" and report["link_sha256"]
    assert {ca["id"]: ca["issues"] for ca in report["cas"] if ca["issues"]} == issuing
    assert {leaf["label"] for leaf in report["managed_leaves"]} == current
    listed = json.loads(invoke("ca", "list", "--json").stdout)
    assert all(not ca["issues"] for ca in listed if ca["id"] in {ca_id.removesuffix("-2") for ca_id in issuing})


def test_rollover_of_a_sub_ca_is_exit_3(env: Path) -> None:
    assert_one_line_error(invoke("ca", "rollover", "cso-sub"), 3, "not a root")


def test_after_an_mf_rollover_firmware_sign_uses_the_new_signer(
    env: Path, fresh_pki: PKI, firmware: Path, tmp_path: Path
) -> None:
    before = sign_json(firmware)
    assert _signer_ca(fresh_pki, before) == "mf-root"
    _rollover("mf-root")
    after = sign_json(firmware, "--location", LOCATION)
    assert _signer_ca(fresh_pki, after) == "mf-root-2"
    assert after["updateFirmware"]["firmware"]["signingCertificate"] == after["signingCertificate"]
    for signed in (before, after):  # the old signer's signature still verifies while mf-root is valid
        signature, certificate = write_pair(tmp_path, signed)
        checked = invoke(
            "firmware", "verify", str(firmware), "--signature", f"@{signature}", "--certificate", str(certificate)
        )
        assert checked.exit_code == 0, checked.output


def test_signer_ca_picks_the_old_generation_for_stations_not_yet_updated(
    env: Path, fresh_pki: PKI, firmware: Path
) -> None:
    _rollover("mf-root")
    assert _signer_ca(fresh_pki, sign_json(firmware, "--signer-ca", "mf-root")) == "mf-root"


def test_signer_ca_that_is_no_manufacturer_root_is_exit_3_and_signs_nothing(
    env: Path, firmware: Path, fresh_pki: PKI
) -> None:
    before = fresh_pki.audit.count()
    assert_one_line_error(invoke("firmware", "sign", str(firmware), "--signer-ca", "cso-root"), 3, "manufacturer root")
    assert fresh_pki.audit.count() == before


def test_after_the_old_mf_root_is_revoked_firmware_sign_still_signs(env: Path, firmware: Path, fresh_pki: PKI) -> None:
    _rollover("mf-root")
    revoked = invoke("cert", "revoke", fresh_pki.cas.get("mf-root").serial, "--ca", "mf-root", "--reason", "superseded")
    assert revoked.exit_code == 0, revoked.output
    assert _signer_ca(fresh_pki, sign_json(firmware)) == "mf-root-2"
    assert_one_line_error(invoke("firmware", "sign", str(firmware), "--signer-ca", "mf-root"), 4, "mf-root")
