"""The ``evpki`` CLI end to end through Typer's runner, with openssl checking what it prints."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text
from typer.testing import CliRunner

from cli.main import app
from tests.conftest import (
    DEFAULT_CA_IDS,
    ORG,
    TEST_PASSPHRASE,
    database_url,
    drop_database,
    requires_openssl,
    run_openssl,
)

runner = CliRunner()


@pytest.fixture(scope="module")
def home(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    path = tmp_path_factory.mktemp("cli-home")
    url, name = database_url(path)
    env = {"EVPKI_HOME": str(path), "EVPKI_DATABASE_URL": url, "EVPKI_KEY_PASSPHRASE": TEST_PASSPHRASE}
    with pytest.MonkeyPatch.context() as mp:
        for key, value in env.items():
            mp.setenv(key, value)
        result = runner.invoke(app, ["init", "--org", ORG])
        assert result.exit_code == 0, result.output
        yield path
    drop_database(name)


@pytest.fixture
def env(home: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("EVPKI_HOME", str(home))
    monkeypatch.setenv("EVPKI_KEY_PASSPHRASE", TEST_PASSPHRASE)
    return home


def invoke(*args: str, input_text: str | None = None):  # type: ignore[no-untyped-def]
    return runner.invoke(app, list(args), input=input_text)


def openssl_csr(tmp_path: Path, subject: str, *, key: str = "ec", name: str = "req") -> Path:
    csr = tmp_path / f"{name}.csr"
    newkey = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256"] if key == "ec" else ["-newkey", key]
    subprocess.run(
        [
            "openssl",
            "req",
            "-new",
            *newkey,
            "-nodes",
            "-keyout",
            str(tmp_path / f"{name}.key"),
            "-subj",
            subject,
            "-out",
            str(csr),
        ],
        check=True,
        capture_output=True,
    )
    return csr


def certificate_count() -> int:
    result = invoke("cert", "list", "--json", "--limit", "100000")
    assert result.exit_code == 0, result.output
    return len(json.loads(result.stdout))


def test_help_lists_command_groups_and_exit_codes() -> None:
    result = invoke("--help")
    assert result.exit_code == 0
    for word in ("init", "ca", "cert", "crl", "audit", "Exit codes"):
        assert word in result.stdout


def test_ca_list_json_names_the_default_hierarchy(env: Path) -> None:
    result = invoke("ca", "list", "--json")
    assert result.exit_code == 0, result.output
    ids = {ca["id"] for ca in json.loads(result.stdout)}
    assert ids == DEFAULT_CA_IDS


def test_ca_list_works_without_the_key_passphrase(env: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("EVPKI_KEY_PASSPHRASE")
    assert invoke("ca", "list").exit_code == 0


def test_rerunning_init_keeps_everything(env: Path) -> None:
    before = json.loads(invoke("ca", "list", "--json").stdout)
    result = invoke("init")
    assert result.exit_code == 0, result.output
    assert "kept" in result.stdout
    assert json.loads(invoke("ca", "list", "--json").stdout) == before


def test_init_with_another_org_is_a_conflict(env: Path) -> None:
    result = invoke("init", "--org", "Somebody Else")
    assert result.exit_code == 6
    assert "error:" in result.stderr
    assert "Traceback" not in result.output


def test_ca_show_unknown_is_not_found(env: Path) -> None:
    result = invoke("ca", "show", "nope")
    assert result.exit_code == 5
    assert result.stderr.strip().count("\n") == 0


@requires_openssl
def test_issued_station_chain_verifies_with_openssl(env: Path, tmp_path: Path) -> None:
    csr = openssl_csr(tmp_path, f"/O={ORG}/CN=SN-CLI-1")
    out = tmp_path / "chain.pem"
    result = invoke(
        "cert",
        "issue",
        "--profile",
        "station",
        "--csr",
        str(csr),
        "--station-id",
        "CP-CLI-1",
        "--station-serial",
        "SN-CLI-1",
        "--out",
        str(out),
    )
    assert result.exit_code == 0, result.output
    root = tmp_path / "root.pem"
    assert invoke("ca", "export", "cso-root", "--out", str(root)).exit_code == 0
    chain = out.read_text()
    assert chain.count("BEGIN CERTIFICATE") == 2  # leaf + cso-sub, no root
    verify = run_openssl("verify", "-x509_strict", "-CAfile", str(root), "-untrusted", str(out), str(out))
    assert verify.returncode == 0, verify.stderr
    serial = run_openssl("x509", "-in", str(out), "-noout", "-serial").stdout.strip().split("=")[1]
    shown = json.loads(invoke("cert", "show", serial, "--json").stdout)
    assert shown["identity"] == "CP-CLI-1"
    assert shown["station_serial"] == "SN-CLI-1"
    assert shown["status"] == "valid"


@requires_openssl
def test_policy_refusal_is_one_line_exit_4_and_stores_nothing(env: Path, tmp_path: Path) -> None:
    csr = openssl_csr(tmp_path, f"/O={ORG}/CN=SN-CLI-2", key="rsa:1024")
    before = certificate_count()
    result = invoke("cert", "issue", "--profile", "station", "--csr", str(csr), "--station-id", "SN-CLI-2")
    assert result.exit_code == 4
    assert "key.rsa-min-bits" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    assert "Traceback" not in result.output
    assert certificate_count() == before


def test_missing_csr_file_is_invalid_input(env: Path, tmp_path: Path) -> None:
    result = invoke("cert", "issue", "--profile", "station", "--csr", str(tmp_path / "absent.csr"), "--station-id", "X")
    assert result.exit_code == 3


def test_garbage_csr_is_invalid_input(env: Path, tmp_path: Path) -> None:
    bad = tmp_path / "bad.csr"
    bad.write_text("-----BEGIN CERTIFICATE REQUEST-----\nnot base64 at all\n-----END CERTIFICATE REQUEST-----\n")
    result = invoke("cert", "issue", "--profile", "station", "--csr", str(bad), "--station-id", "X")
    assert result.exit_code == 3
    assert "Traceback" not in result.output


def test_issue_without_passphrase_is_unavailable(env: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("EVPKI_KEY_PASSPHRASE")
    csr = openssl_csr(tmp_path, f"/O={ORG}/CN=SN-CLI-3")
    result = invoke("cert", "issue", "--profile", "station", "--csr", str(csr), "--station-id", "SN-CLI-3")
    assert result.exit_code == 7
    assert "EVPKI_KEY_PASSPHRASE" in result.stderr


@requires_openssl
def test_renew_revoke_and_crl_through_the_cli(env: Path, tmp_path: Path) -> None:
    first = openssl_csr(tmp_path, f"/O={ORG}/CN=SN-CLI-4", name="first")
    second = openssl_csr(tmp_path, f"/O={ORG}/CN=SN-CLI-4", name="second")
    old_chain, new_chain = tmp_path / "old.pem", tmp_path / "new.pem"
    assert (
        invoke(
            "cert",
            "issue",
            "--profile",
            "station",
            "--csr",
            str(first),
            "--station-id",
            "CP-CLI-4",
            "--station-serial",
            "SN-CLI-4",
            "--out",
            str(old_chain),
        ).exit_code
        == 0
    )
    renewed = invoke("cert", "renew", "--csr", str(second), "--station-id", "CP-CLI-4", "--out", str(new_chain))
    assert renewed.exit_code == 0, renewed.output
    old_serial = run_openssl("x509", "-in", str(old_chain), "-noout", "-serial").stdout.strip().split("=")[1]
    new_serial = run_openssl("x509", "-in", str(new_chain), "-noout", "-serial").stdout.strip().split("=")[1]
    old = json.loads(invoke("cert", "show", old_serial.lower(), "--json").stdout)
    assert old["status"] == "superseded"
    assert old["superseded_by"] == new_serial.lstrip("0")

    assert invoke("cert", "revoke", new_serial, "--reason", "keyCompromise").exit_code == 0
    again = invoke("cert", "revoke", new_serial, "--reason", "keyCompromise")
    assert again.exit_code == 6
    assert invoke("cert", "revoke", "ABCDEF", "--reason", "keyCompromise").exit_code == 5
    assert invoke("cert", "revoke", new_serial, "--reason", "made-up").exit_code == 3

    crl = tmp_path / "cso-sub.crl"
    assert invoke("crl", "generate", "--ca", "cso-sub", "--format", "der", "--out", str(crl)).exit_code == 0
    chain = tmp_path / "cso-sub-chain.pem"
    assert invoke("ca", "export", "cso-sub", "--chain", "--out", str(chain)).exit_code == 0
    verified = run_openssl("crl", "-inform", "DER", "-in", str(crl), "-CAfile", str(chain), "-noout", "-verify")
    assert verified.returncode == 0, verified.stderr
    listing = run_openssl("crl", "-inform", "DER", "-in", str(crl), "-noout", "-text").stdout
    assert new_serial.lstrip("0") in listing.replace(":", "")

    revoked = json.loads(invoke("cert", "list", "--status", "revoked", "--json").stdout)
    assert new_serial.lstrip("0") in {c["serial"] for c in revoked}


def test_list_filters_and_bad_duration(env: Path) -> None:
    expiring = invoke("cert", "list", "--expiring-within", "120d", "--json")
    assert expiring.exit_code == 0
    labels = {c["label"] for c in json.loads(expiring.stdout)}
    assert "csms-server" in labels  # issued by init for 90 days
    assert invoke("cert", "list", "--expiring-within", "soon").exit_code == 3
    by_ca = json.loads(invoke("cert", "list", "--ca", "mf-root", "--json").stdout)
    assert {c["profile"] for c in by_ca} == {"root", "firmware-signer"}  # the root is self-issued


def test_audit_verify_then_tamper_names_the_record(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    url, name = database_url(tmp_path)
    monkeypatch.setenv("EVPKI_HOME", str(tmp_path))
    monkeypatch.setenv("EVPKI_DATABASE_URL", url)
    monkeypatch.setenv("EVPKI_KEY_PASSPHRASE", TEST_PASSPHRASE)
    try:
        assert invoke("init", "--org", ORG).exit_code == 0
        ok = invoke("audit", "verify")
        assert ok.exit_code == 0
        assert "intact" in ok.stdout
        engine = create_engine(url)
        with engine.begin() as connection:
            connection.execute(text("UPDATE audit_record SET actor = 'mallory' WHERE seq = 3"))
        engine.dispose()
        broken = invoke("audit", "verify")
        assert broken.exit_code == 8
        assert "record 3" in broken.stderr
    finally:
        drop_database(name)


def test_unexpected_errors_are_one_line_exit_1(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    import cli.ca_cmd
    from cli.main import main

    def explode() -> None:
        raise RuntimeError("boom")

    monkeypatch.setattr(cli.ca_cmd, "open_pki", explode)
    monkeypatch.setattr("sys.argv", ["evpki", "ca", "list"])
    with pytest.raises(SystemExit) as exit_info:
        main()
    assert exit_info.value.code == 1
    err = capsys.readouterr().err
    assert "internal error" in err
    assert "Traceback" not in err
