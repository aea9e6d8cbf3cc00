"""``evpki ev create-vehicle --iso 20`` and ``evpki ev simulate-install --iso 20`` through Typer's runner.

The CLI's car shares the service's -20 codec; here the independent -20 car's primitives check what
it wrote: the contract keys against the certificates, the chains up to the -20 MO root.
"""

from __future__ import annotations

import json
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed448
from typer.testing import CliRunner

from cli.main import app
from pki import PKI
from tests.conftest import TEST_PASSPHRASE

runner = CliRunner()
_SPKI = serialization.PublicFormat.SubjectPublicKeyInfo


@pytest.fixture
def env20(pki20: PKI, monkeypatch: pytest.MonkeyPatch) -> Iterator[PKI]:
    """The session's -20 PKI, in EVPKI_* variables."""
    monkeypatch.setenv("EVPKI_HOME", str(pki20.settings.home))
    monkeypatch.setenv("EVPKI_DATABASE_URL", pki20.settings.database_url)
    monkeypatch.setenv("EVPKI_KEY_PASSPHRASE", TEST_PASSPHRASE)
    yield pki20


def invoke(*args: str):  # type: ignore[no-untyped-def]
    return runner.invoke(app, list(args))


@pytest.mark.parametrize(("curve", "pcid"), [("p521", "WMICLI20000000P521"), ("x448", "WMICLI20000000X448")])
def test_a_minus_20_car_installs_every_contract(env20: PKI, tmp_path: Path, curve: str, pcid: str) -> None:
    car = tmp_path / "car"
    made = invoke("ev", "create-vehicle", "--iso", "20", "--curve", curve, "--pcid", pcid, "--out-dir", str(car))
    assert made.exit_code == 0, made.output
    assert stat.S_IMODE((car / "oem.key.pem").stat().st_mode) == 0o600
    assert (car / "oem-x448.key.pem").exists() == (curve == "x448")
    emaids = [f"DECLI{curve.upper()}{n:05d}" for n in range(3)]
    for priority, emaid in enumerate(emaids):
        added = invoke("contract", "add", "--emaid", emaid, "--pcid", pcid, "--concurrent", "--priority", str(priority))
        assert added.exit_code == 0, added.output
    out = tmp_path / "contracts"
    installed = invoke("ev", "simulate-install", "--iso", "20", "--oem-cert",
                       str(car / "oem.pem"), "--oem-key", str(car / "oem.key.pem"), "--out-dir", str(out))  # fmt: skip
    assert installed.exit_code == 0, installed.output
    report = json.loads(installed.stdout)
    assert [c["eMAID"] for c in report["contracts"]] == emaids
    assert [c["remainingContractCertificateChains"] for c in report["contracts"]] == [2, 1, 0]
    assert {c["ecdhCurve"] for c in report["contracts"]} == {"SECP521" if curve == "p521" else "X448"}
    mo_root = env20.cas.chain("mo20-root")[-1]
    for emaid in emaids:
        chain = x509.load_pem_x509_certificates((out / f"{emaid}.pem").read_bytes())
        for child, parent in zip(chain, [*chain[1:], mo_root], strict=True):
            child.verify_directly_issued_by(parent)
        assert stat.S_IMODE((out / f"{emaid}.key.pem").stat().st_mode) == 0o600
        key = serialization.load_pem_private_key((out / f"{emaid}.key.pem").read_bytes(), password=None)
        assert isinstance(key, ec.EllipticCurvePrivateKey if curve == "p521" else ed448.Ed448PrivateKey)
        assert key.public_key().public_bytes(serialization.Encoding.DER, _SPKI) == chain[0].public_key().public_bytes(
            serialization.Encoding.DER, _SPKI
        )


def test_a_minus_20_car_without_contract_or_with_a_wrong_key_is_told_so(env20: PKI, tmp_path: Path) -> None:
    car = tmp_path / "car"
    pcid = "WMICLI20000000NONE"
    assert invoke("ev", "create-vehicle", "--iso", "20", "--pcid", pcid, "--out-dir", str(car)).exit_code == 0
    refused = invoke("ev", "simulate-install", "--iso", "20", "--oem-cert", str(car / "oem.pem"), "--oem-key",
                     str(car / "oem.key.pem"))  # fmt: skip
    assert refused.exit_code == 4, refused.output
    assert json.loads(refused.stdout)["contracts"][0]["responseCode"] == "WARNING_NoContractMatchingPCIDFound"
    p256 = tmp_path / "p256.pem"
    p256.write_bytes(
        ec.generate_private_key(ec.SECP256R1()).private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    wrong = invoke("ev", "simulate-install", "--iso", "20", "--oem-cert", str(car / "oem.pem"), "--oem-key", str(p256))
    assert wrong.exit_code == 3 and "P-521 or Ed448" in wrong.output  # InvalidInput
    bad_curve = invoke("ev", "create-vehicle", "--iso", "20", "--curve", "p256", "--pcid", pcid, "--out-dir", str(car))
    assert bad_curve.exit_code == 2
