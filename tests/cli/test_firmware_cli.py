"""``evpki firmware sign|verify`` through Typer's runner: payloads, exit codes, one-line reasons."""

from __future__ import annotations

import base64
import json
from pathlib import Path

import pytest
import typer.main
from cryptography import x509
from typer.testing import CliRunner

from cli import firmware_cmd
from cli.main import app
from pki import PKI
from tests.conftest import TEST_PASSPHRASE, make_csr, requires_openssl, run_openssl

runner = CliRunner()
LOCATION = "https://firmware.example.com/cp/v2.3.1.bin"


@pytest.fixture
def env(fresh_pki: PKI, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Point the CLI at a PKI of its own (``fresh_pki``: a copy of the session's initialised template)."""
    settings = fresh_pki.settings
    monkeypatch.setenv("EVPKI_HOME", str(settings.home))
    monkeypatch.setenv("EVPKI_DATABASE_URL", settings.resolved_database_url)
    monkeypatch.setenv("EVPKI_KEY_PASSPHRASE", TEST_PASSPHRASE)
    return settings.home


@pytest.fixture
def firmware(tmp_path: Path) -> Path:
    path = tmp_path / "firmware.bin"
    path.write_bytes(b"\x00\x01firmware image" * 150_000)  # 2.4 MiB: several 1 MiB chunks
    return path


def invoke(*args: str, input_text: str | None = None):  # type: ignore[no-untyped-def]
    return runner.invoke(app, list(args), input=input_text)


def sign_json(firmware: Path, *options: str) -> dict:  # type: ignore[type-arg]
    result = invoke("firmware", "sign", str(firmware), "--json", *options)
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def write_pair(directory: Path, signed: dict) -> tuple[Path, Path]:  # type: ignore[type-arg]
    signature = directory / "firmware.sig"
    signature.write_text(signed["signature"])
    certificate = directory / "signer.pem"
    certificate.write_text(signed["signingCertificate"])
    return signature, certificate


def assert_one_line_error(result, code: int, reason: str) -> None:  # type: ignore[no-untyped-def]
    assert result.exit_code == code, result.output
    assert reason in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    assert "Traceback" not in result.output


# -- sign ------------------------------------------------------------------------------------------


def test_sign_json_has_every_payload_when_a_location_is_given(env: Path, firmware: Path) -> None:
    signed = sign_json(
        firmware, "--location", LOCATION, "--request-id", "17", "--retrieve-at", "2026-12-01T02:00:00+01:00"
    )
    assert list(signed) == [
        "sha256",
        "size",
        "algorithm",
        "signature",
        "signingCertificate",
        "updateFirmware",
        "signedUpdateFirmware",
    ]
    assert signed["size"] == firmware.stat().st_size
    expected_firmware = {
        "location": LOCATION,
        "retrieveDateTime": "2026-12-01T01:00:00Z",
        "signingCertificate": signed["signingCertificate"],
        "signature": signed["signature"],
    }
    for name in ("updateFirmware", "signedUpdateFirmware"):
        assert signed[name] == {"requestId": 17, "firmware": expected_firmware}


def test_sign_json_without_location_has_no_payloads(env: Path, firmware: Path) -> None:
    signed = sign_json(firmware)
    assert "updateFirmware" not in signed
    assert "signedUpdateFirmware" not in signed
    assert signed["algorithm"] == "ecdsa-sha256"


@pytest.mark.parametrize(
    ("version", "key"), [("1.6", "signedUpdateFirmware"), ("2.0.1", "updateFirmware"), ("2.1", "updateFirmware")]
)
def test_sign_for_one_ocpp_version(env: Path, firmware: Path, version: str, key: str) -> None:
    signed = sign_json(firmware, "--location", LOCATION, "--ocpp-version", version)
    assert {"updateFirmware", "signedUpdateFirmware"} & set(signed) == {key}


def test_long_location_fits_only_ocpp_21(env: Path, firmware: Path) -> None:
    location = "https://x/" + "a" * 600
    refused = invoke("firmware", "sign", str(firmware), "--location", location)
    assert_one_line_error(refused, 3, "pass --ocpp-version 2.1")
    signed = sign_json(firmware, "--location", location, "--ocpp-version", "2.1")
    assert signed["updateFirmware"]["firmware"]["location"] == location


def test_sign_prints_signature_certificate_and_payload(env: Path, firmware: Path) -> None:
    result = invoke("firmware", "sign", str(firmware), "--location", LOCATION, "--ocpp-version", "2.0.1")
    assert result.exit_code == 0, result.output
    assert "signature (Base64):" in result.stdout
    assert "-----BEGIN CERTIFICATE-----" in result.stdout
    assert '"requestId": 1' in result.stdout
    assert "updateFirmware payload:" in result.stdout


def test_sign_writes_to_out(env: Path, firmware: Path, tmp_path: Path) -> None:
    out = tmp_path / "signed.json"
    result = invoke("firmware", "sign", str(firmware), "--json", "--out", str(out))
    assert result.exit_code == 0, result.output
    assert json.loads(out.read_text())["size"] == firmware.stat().st_size


@pytest.mark.parametrize(
    ("args", "reason"),
    [
        (("--ocpp-version", "2.0"), "--ocpp-version must be one of"),
        (("--ocpp-version", "2.0.1"), "needs --location"),
        (("--location", LOCATION, "--retrieve-at", "tomorrow"), "not an ISO 8601"),
        (("--location", LOCATION, "--retrieve-at", "2026-12-01T02:00:00"), "needs a time zone"),
    ],
)
def test_sign_argument_errors_are_invalid_input(env: Path, firmware: Path, args: tuple[str, ...], reason: str) -> None:
    assert_one_line_error(invoke("firmware", "sign", str(firmware), *args), 3, reason)


def test_sign_of_a_missing_or_empty_file_is_invalid_input(env: Path, tmp_path: Path) -> None:
    assert_one_line_error(invoke("firmware", "sign", str(tmp_path / "absent.bin")), 3, "no such file")
    empty = tmp_path / "empty.bin"
    empty.write_bytes(b"")
    assert_one_line_error(invoke("firmware", "sign", str(empty)), 3, "empty")


def test_sign_over_the_size_limit_is_invalid_input(env: Path, firmware: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("EVPKI_FIRMWARE_MAX_BYTES", "1048576")
    assert_one_line_error(invoke("firmware", "sign", str(firmware)), 3, "larger than the limit of 1048576 bytes")


def test_sign_without_the_passphrase_is_unavailable(env: Path, firmware: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("EVPKI_KEY_PASSPHRASE")
    assert_one_line_error(invoke("firmware", "sign", str(firmware)), 7, "EVPKI_KEY_PASSPHRASE")


# -- verify ----------------------------------------------------------------------------------------


def test_verify_ok_is_one_line_naming_the_signer(env: Path, firmware: Path, tmp_path: Path) -> None:
    signature, certificate = write_pair(tmp_path, sign_json(firmware))
    result = invoke(
        "firmware", "verify", str(firmware), "--signature", f"@{signature}", "--certificate", str(certificate)
    )
    assert result.exit_code == 0, result.output
    assert result.stdout.startswith("OK: firmware.bin")
    assert "Firmware Signer" in result.stdout
    assert len(result.stdout.strip().splitlines()) == 1


def test_verify_takes_the_signature_inline_raw_or_as_json(env: Path, firmware: Path, tmp_path: Path) -> None:
    signed = sign_json(firmware)
    _, certificate = write_pair(tmp_path, signed)
    inline = invoke(
        "firmware", "verify", str(firmware), "--signature", signed["signature"], "--certificate", str(certificate)
    )
    assert inline.exit_code == 0, inline.output
    raw = tmp_path / "sig.bin"  # as `openssl dgst -sign` writes it
    raw.write_bytes(base64.b64decode(signed["signature"]))
    from_raw = invoke("firmware", "verify", str(firmware), "--signature", f"@{raw}", "--certificate", str(certificate))
    assert from_raw.exit_code == 0, from_raw.output
    as_json = invoke(
        "firmware", "verify", str(firmware), "--signature", f"@{raw}", "--certificate", str(certificate), "--json"
    )
    assert json.loads(as_json.stdout)["sha256"] == signed["sha256"]


def test_verify_of_a_tampered_file_exits_9_with_the_reason(env: Path, firmware: Path, tmp_path: Path) -> None:
    signature, certificate = write_pair(tmp_path, sign_json(firmware))
    with firmware.open("r+b") as handle:
        handle.seek(1_500_000)
        handle.write(b"\xff")
    result = invoke(
        "firmware", "verify", str(firmware), "--signature", f"@{signature}", "--certificate", str(certificate)
    )
    assert_one_line_error(result, 9, "signature does not match the file")


def test_verify_with_a_station_certificate_exits_9(env: Path, firmware: Path, tmp_path: Path) -> None:
    signature, _ = write_pair(tmp_path, sign_json(firmware))
    csr_path = tmp_path / "station.csr"
    csr_path.write_text(make_csr("CPFWCLI01")[0])
    station = tmp_path / "station.pem"
    issued = invoke("cert", "issue", "--profile", "station", "--csr", str(csr_path), "--station-id", "CPFWCLI01")
    assert issued.exit_code == 0, issued.output
    station.write_text(issued.stdout)
    result = invoke("firmware", "verify", str(firmware), "--signature", f"@{signature}", "--certificate", str(station))
    # A chain (leaf + cso-sub) is not a signing certificate; the leaf alone was not issued by mf-root.
    assert_one_line_error(result, 3, "expected one signing certificate")
    leaf = issued.stdout[: issued.stdout.index("-----END CERTIFICATE-----") + len("-----END CERTIFICATE-----\n")]
    station.write_text(leaf)
    result = invoke("firmware", "verify", str(firmware), "--signature", f"@{signature}", "--certificate", str(station))
    assert_one_line_error(result, 9, "was not issued by mf-root")


def test_revoked_signer_refuses_to_sign_and_fails_verification(env: Path, firmware: Path, tmp_path: Path) -> None:
    signed = sign_json(firmware)
    signature, certificate = write_pair(tmp_path, signed)
    serial = format(x509.load_pem_x509_certificate(certificate.read_bytes()).serial_number, "X")
    assert invoke("cert", "revoke", serial, "--reason", "keyCompromise", "--ca", "mf-root").exit_code == 0
    assert_one_line_error(invoke("firmware", "sign", str(firmware)), 4, "firmware.signer-revoked")
    result = invoke(
        "firmware", "verify", str(firmware), "--signature", f"@{signature}", "--certificate", str(certificate)
    )
    assert_one_line_error(result, 9, "revoked (keyCompromise)")


def test_verify_input_errors(env: Path, firmware: Path, tmp_path: Path) -> None:
    signature, certificate = write_pair(tmp_path, sign_json(firmware))
    garbage = tmp_path / "garbage.pem"
    garbage.write_text("not a certificate")
    bad_cert = invoke(
        "firmware", "verify", str(firmware), "--signature", f"@{signature}", "--certificate", str(garbage)
    )
    assert_one_line_error(bad_cert, 3, "not a PEM X.509 certificate")
    bad_signature = invoke("firmware", "verify", str(firmware), "--signature", "%%%", "--certificate", str(certificate))
    assert_one_line_error(bad_signature, 3, "not Base64")
    missing = invoke(
        "firmware", "verify", str(tmp_path / "absent.bin"), "--signature", "AAAA", "--certificate", str(certificate)
    )
    assert_one_line_error(missing, 3, "no such file")


@requires_openssl
def test_signed_output_verifies_with_openssl(env: Path, firmware: Path, tmp_path: Path) -> None:
    signed = sign_json(firmware, "--location", LOCATION)
    signature = tmp_path / "sig.bin"
    signature.write_bytes(base64.b64decode(signed["updateFirmware"]["firmware"]["signature"]))
    certificate = tmp_path / "cert.pem"
    certificate.write_text(signed["signedUpdateFirmware"]["firmware"]["signingCertificate"])
    public = tmp_path / "pub.pem"
    public.write_text(run_openssl("x509", "-in", str(certificate), "-noout", "-pubkey").stdout)
    result = run_openssl("dgst", "-sha256", "-verify", str(public), "-signature", str(signature), str(firmware))
    assert result.returncode == 0, result.stdout + result.stderr


# -- help ------------------------------------------------------------------------------------------


def test_help_documents_the_firmware_group_and_exit_code_9() -> None:
    result = invoke("--help")
    assert result.exit_code == 0
    assert "firmware" in result.stdout
    assert "9 verification failed" in " ".join(result.stdout.split())


@pytest.mark.parametrize(
    ("command", "options"),
    [
        ("sign", ("--location", "--request-id", "--retrieve-at", "--ocpp-version", "--json", "--out")),
        ("verify", ("--signature", "--certificate", "--json")),
    ],
)
def test_every_option_has_help_text(command: str, options: tuple[str, ...]) -> None:
    group = typer.main.get_command(firmware_cmd.app)
    params = group.commands[command].params  # type: ignore[attr-defined]
    helps = {name: getattr(param, "help", None) for param in params for name in param.opts}
    for option in options:
        assert helps.get(option), f"{command} {option} has no help text"
