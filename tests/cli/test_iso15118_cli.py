"""``evpki ev``, ``evpki contract install`` and ``evpki exi decode`` through Typer's runner."""

from __future__ import annotations

import base64
import json
import stat
from pathlib import Path
from xml.etree import ElementTree

from typer.testing import CliRunner

from cli.main import app

runner = CliRunner()
PCID = "WMICLI00000000001"
EMAID = "DECLIC000000001"


def invoke(*args: str):  # type: ignore[no-untyped-def]
    return runner.invoke(app, list(args))


def _vehicle(home: Path) -> Path:
    car = home / "car"
    made = invoke("ev", "create-vehicle", "--pcid", PCID, "--out-dir", str(car))
    assert made.exit_code == 0, made.output
    assert stat.S_IMODE((car / "oem.key.pem").stat().st_mode) == 0o600
    return car


def test_a_car_installs_then_updates_its_contract(env: tuple[Path, str]) -> None:
    car = _vehicle(env[0])
    assert invoke("contract", "add", "--emaid", EMAID, "--pcid", PCID).exit_code == 0
    installed = invoke("ev", "simulate-install", "--oem-cert", str(car / "oem.pem"), "--oem-key",
                       str(car / "oem.key.pem"), "--out-dir", str(car))  # fmt: skip
    assert installed.exit_code == 0, installed.output
    report = json.loads(installed.stdout)
    assert (report["status"], report["responseCode"], report["eMAID"]) == ("Accepted", "OK", EMAID)
    assert report["exiResponseChars"] <= 5600 and len(report["checks"]) == 5
    assert stat.S_IMODE((car / "contract.key.pem").stat().st_mode) == 0o600

    updated = invoke("ev", "simulate-update", "--contract-cert", str(car / "contract.pem"), "--contract-key",
                     str(car / "contract.key.pem"))  # fmt: skip
    assert updated.exit_code == 0, updated.output
    renewed = json.loads(updated.stdout)
    assert renewed["eMAID"] == EMAID
    assert renewed["contractCertificate"]["serial"] != report["contractCertificate"]["serial"]

    shown = json.loads(invoke("contract", "show", EMAID, "--json").stdout)
    assert shown["currentCertificateSerial"] == renewed["contractCertificate"]["serial"]


def test_without_a_contract_the_car_is_told_so(env: tuple[Path, str]) -> None:
    car = _vehicle(env[0])
    result = invoke("ev", "simulate-install", "--oem-cert", str(car / "oem.pem"), "--oem-key",
                    str(car / "oem.key.pem"))  # fmt: skip
    assert result.exit_code == 4
    assert json.loads(result.stdout)["responseCode"] == "FAILED_NoCertificateAvailable"


def _request_file(env: tuple[Path, str]) -> Path:
    """A car's signed CertificateInstallationReq as raw EXI, made by the Python API of the simulator."""
    from cryptography import x509
    from cryptography.hazmat.primitives import serialization

    from pki import PKI, Settings
    from pki.iso15118 import ev

    car = _vehicle(env[0])
    certificate = x509.load_pem_x509_certificates((car / "oem.pem").read_bytes())[0]
    key = serialization.load_pem_private_key((car / "oem.key.pem").read_bytes(), None)
    pki = PKI.open(Settings())
    try:
        exi = ev.installation_request(certificate, key, pki.cas.roots("V2GRootCertificate"), b"\x05")  # type: ignore[arg-type]
    finally:
        pki.close()
    path = env[0] / "request.exi"
    path.write_bytes(exi)
    return path


def test_contract_install_prints_the_ocpp_answer(env: tuple[Path, str]) -> None:
    request = _request_file(env)
    assert invoke("contract", "add", "--emaid", EMAID, "--pcid", PCID).exit_code == 0
    answered = invoke("contract", "install", "--exi-request", f"@{request}", "--action", "Install")
    assert answered.exit_code == 0, answered.output
    payload = json.loads(answered.stdout)
    assert payload["status"] == "Accepted" and set(payload) == {"status", "exiResponse"}

    (env[0] / "response.b64").write_text(payload["exiResponse"])
    decoded = invoke("exi", "decode", "--json", f"@{env[0] / 'response.b64'}")
    assert decoded.exit_code == 0, decoded.output
    message = json.loads(decoded.stdout)["V2G_Message"]  # the schema's names (ISO 15118-2 V2G_CI_MsgDef.xsd)
    assert message["Header"]["SessionID"] == "05"
    body = message["Body"]["CertificateInstallationRes"]
    assert body["ResponseCode"] == "OK" and body["eMAID"]["value"] == EMAID
    assert body["ContractSignatureCertChain"]["Certificate"]["subject"] == f"DC=MO,CN={EMAID}"
    assert len(body["SAProvisioningCertificateChain"]["SubCertificates"]["Certificate"]) >= 1

    as_xml = invoke("exi", "decode", f"@{env[0] / 'response.b64'}")
    assert as_xml.exit_code == 0, as_xml.output
    root = ElementTree.fromstring(as_xml.stdout)
    assert root.tag == "V2G_Message" and [child.tag for child in root] == ["Header", "Body"]
    assert root.findtext("Header/SessionID") == "05"
    assert root.find("Body/CertificateInstallationRes/eMAID").text == EMAID  # type: ignore[union-attr]
    assert f"subject DC=MO,CN={EMAID}" in as_xml.stdout  # each certificate is summarised in a comment

    as_base64 = base64.b64encode(request.read_bytes()).decode()
    mismatch = invoke("contract", "install", "--exi-request", as_base64, "--action", "Update")
    assert mismatch.exit_code == 3
    assert json.loads(mismatch.stdout) == {
        "status": "Failed",
        "exiResponse": "",
        "statusInfo": {
            "reasonCode": "ActionMismatch",
            "additionalInfo": "action Update needs a CertificateUpdateReq, but the EXI carries a "
            "CertificateInstallationReq",
        },
    }


def test_exi_decode_refuses_garbage_with_exit_3(env: tuple[Path, str]) -> None:
    for argument in ("AAAA", "not base64!", "gJgC"):
        result = invoke("exi", "decode", argument)
        assert result.exit_code == 3, (argument, result.output)
        assert result.stderr.startswith("error: ")
    unsupported = invoke(
        "exi", "decode", base64.b64encode(bytes.fromhex("809802000000000000000011d0184b88f8434d2000")).decode()
    )
    assert unsupported.exit_code == 3 and "SessionSetupReq" in unsupported.stderr
