"""``evpki contract add|list|show|revoke`` through Typer's runner."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from cli.main import app
from pki import PKI, RequestIdentity
from pki.iso15118.contract_registry import record_contract_certificate
from tests.conftest import make_csr, make_settings

runner = CliRunner()
PCID = "WMIV2G0000000001A"


def invoke(*args: str):  # type: ignore[no-untyped-def]
    return runner.invoke(app, list(args))


def test_add_show_list_revoke(env: tuple[Path, str]) -> None:
    added = invoke("contract", "add", "--emaid", "de-abc-c123abc56", "--pcid", PCID, "--validity", "1y",
                   "--note", "customer 4711", "--json")  # fmt: skip
    assert added.exit_code == 0, added.output
    body = json.loads(added.stdout)
    assert (body["emaid"], body["pcid"], body["status"], body["note"]) == (
        "DEABCC123ABC56",
        PCID,
        "active",
        "customer 4711",
    )
    assert body["validUntil"] is not None and body["currentCertificateSerial"] is None

    shown = invoke("contract", "show", "DE-ABC-C123ABC56", "--json")
    assert shown.exit_code == 0 and json.loads(shown.stdout) == body
    plain = invoke("contract", "show", "DEABCC123ABC56")
    assert plain.exit_code == 0 and "customer 4711" in plain.stdout and "pcid" in plain.stdout

    listed = invoke("contract", "list", "--pcid", PCID, "--json")
    assert listed.exit_code == 0 and [c["emaid"] for c in json.loads(listed.stdout)] == ["DEABCC123ABC56"]
    assert json.loads(invoke("contract", "list", "--status", "revoked", "--json").stdout) == []
    table = invoke("contract", "list")
    assert table.exit_code == 0 and "DEABCC123ABC56" in table.stdout

    revoked = invoke("contract", "revoke", "DEABCC123ABC56", "--note", "terminated")
    assert revoked.exit_code == 0, revoked.output
    assert "revoked" in revoked.stdout
    again = invoke("contract", "revoke", "DEABCC123ABC56")
    assert again.exit_code == 6 and "already revoked" in again.stderr
    assert len(again.stderr.strip().splitlines()) == 1
    after = json.loads(invoke("contract", "show", "DEABCC123ABC56", "--json").stdout)
    assert (after["status"], after["revocationNote"]) == ("revoked", "terminated")


def test_valid_until_date_means_through_that_day(env: tuple[Path, str]) -> None:
    result = invoke("contract", "add", "--emaid", "DEABCC123ABC56", "--pcid", PCID, "--valid-until", "2099-12-31",
                    "--json")  # fmt: skip
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["validUntil"] == "2099-12-31T23:59:59+00:00"


@pytest.mark.parametrize(
    ("args", "code", "message"),
    [
        (("--emaid", "DE-ABC-1", "--pcid", PCID), 3, "not an eMAID"),
        (("--emaid", "DEABCC123ABC56", "--pcid", "WMI-1"), 3, "not a PCID"),
        (
            ("--emaid", "DEABCC123ABC56", "--pcid", PCID, "--valid-until", "2099-12-31", "--validity", "1y"),
            3,
            "not both",
        ),
        (("--emaid", "DEABCC123ABC56", "--pcid", PCID, "--valid-until", "31.12.2099"), 3, "not a date"),
        (("--emaid", "DEABCC123ABC56", "--pcid", PCID, "--validity", "forever"), 3, "not a duration"),
    ],
)
def test_bad_input_exits_3(env: tuple[Path, str], args: tuple[str, ...], code: int, message: str) -> None:
    result = invoke("contract", "add", *args)
    assert result.exit_code == code, result.output
    assert message in result.stderr
    assert json.loads(invoke("contract", "list", "--json").stdout) == []


def test_second_active_contract_for_a_vehicle_exits_6(env: tuple[Path, str]) -> None:
    assert invoke("contract", "add", "--emaid", "DEABCC123ABC56", "--pcid", PCID).exit_code == 0
    result = invoke("contract", "add", "--emaid", "DEABCC123ABC57", "--pcid", PCID)
    assert result.exit_code == 6
    assert f"PCID {PCID} already holds contract DEABCC123ABC56" in result.stderr


def test_unknown_contract_exits_5(env: tuple[Path, str]) -> None:
    assert invoke("contract", "show", "DEABCC123ABC56").exit_code == 5
    assert invoke("contract", "revoke", "DEABCC123ABC56").exit_code == 5
    assert invoke("contract", "list", "--status", "valid").exit_code == 3


def test_show_and_revoke_name_the_contract_certificate(env: tuple[Path, str]) -> None:
    home, url = env
    assert invoke("contract", "add", "--emaid", "DEABCC123ABC56", "--pcid", PCID).exit_code == 0
    pki = PKI.open(make_settings(home, url))
    try:
        csr, _ = make_csr("DEABCC123ABC56", dc="MO")
        issued = pki.certificates.issue(profile="contract", csr=csr, identity=RequestIdentity(emaid="DEABCC123ABC56"))
        with pki._ctx.database.write() as session:
            record_contract_certificate(
                session, "DEABCC123ABC56", issued.certificate.issuer_id, issued.certificate.serial
            )
    finally:
        pki.close()
    reference = f"{issued.certificate.issuer_id}/{issued.certificate.serial}"
    shown = json.loads(invoke("contract", "show", "DEABCC123ABC56", "--json").stdout)
    assert f"{shown['currentCertificateIssuer']}/{shown['currentCertificateSerial']}" == reference
    revoked = invoke("contract", "revoke", "DEABCC123ABC56")
    assert revoked.exit_code == 0 and reference in revoked.stdout
    certificate = json.loads(invoke("cert", "show", issued.certificate.serial, "--json").stdout)
    assert (certificate["status"], certificate["revocation_reason"]) == ("revoked", "cessationOfOperation")
