"""``evpki trust`` through ``typer.testing.CliRunner``: add, list --json, show, remove, import, and the
documented exit codes of its refusals."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from cli.main import app
from tests.foreign_roots import foreign_root, pem_of, rcp_entry, sha256_of

runner = CliRunner()


def _run(*args: str):  # type: ignore[no-untyped-def]
    return runner.invoke(app, list(args))


def test_evpki_help_shows_trust() -> None:
    result = _run("--help")
    assert result.exit_code == 0 and "trust" in result.stdout


def test_add_list_show_remove(env: tuple[Path, str], tmp_path: Path) -> None:
    root = foreign_root("CLI V2G Root").certificate
    path = tmp_path / "root.pem"
    path.write_text(pem_of(root))
    added = _run("trust", "add", str(path), "--use", "V2GRootCertificate", "--label", "cli-root", "--json")
    assert added.exit_code == 0, added.output
    assert json.loads(added.stdout)["sha256"] == sha256_of(root)

    listed = _run("trust", "list", "--use", "V2GRootCertificate", "--json")
    assert [item["label"] for item in json.loads(listed.stdout)] == ["cli-root"]
    assert "cli-root" in _run("trust", "list").stdout
    shown = _run("trust", "show", sha256_of(root))
    assert shown.exit_code == 0 and "CLI V2G Root" in shown.stdout
    assert _run("trust", "show", "cli-root", "--pem").stdout == pem_of(root)

    removed = _run("trust", "remove", "cli-root")
    assert removed.exit_code == 0 and "removed" in removed.stdout
    assert json.loads(_run("trust", "list", "--json").stdout) == []
    assert json.loads(_run("trust", "list", "--all", "--json").stdout)[0]["removed_at"] is not None


def test_refusals_have_the_documented_exit_codes(env: tuple[Path, str], tmp_path: Path) -> None:
    not_ca = tmp_path / "not-ca.pem"
    not_ca.write_text(pem_of(foreign_root(ca=False).certificate))
    refused = _run("trust", "add", str(not_ca), "--use", "V2GRootCertificate")
    assert refused.exit_code == 4 and "[rule trust.ca]" in refused.stderr
    good = tmp_path / "good.pem"
    good.write_text(pem_of(foreign_root().certificate))
    assert _run("trust", "add", str(good), "--use", "MORootCertificate").exit_code == 0
    assert _run("trust", "add", str(good), "--use", "MORootCertificate").exit_code == 6
    assert _run("trust", "add", str(good), "--use", "NoSuchUse").exit_code == 3
    assert _run("trust", "show", "missing").exit_code == 5


def test_import_twice_changes_nothing(env: tuple[Path, str], tmp_path: Path) -> None:
    ctl = tmp_path / "ctl.json"
    entries = [rcp_entry(foreign_root(f"Import {n}").certificate, "V2G", str(n)) for n in range(3)]
    ctl.write_text(json.dumps({"signerCertificate": "", "timeStamp": "", "CTL": {"rootCertificates": entries}}))
    first = _run("trust", "import", str(ctl))
    assert first.exit_code == 0 and "3 added, 0 unchanged, 0 refused" in first.stdout
    second = _run("trust", "import", str(ctl), "--json")
    assert second.exit_code == 0
    report = json.loads(second.stdout)
    assert report["added"] == [] and len(report["unchanged"]) == 3
