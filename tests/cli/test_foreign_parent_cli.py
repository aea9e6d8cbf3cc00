"""``evpki init`` / ``ca request`` / ``ca install`` with openssl as the external V2G root operator.

openssl makes the root, signs evpki's request of ``cpo-sub1`` (copying the extensions it asks
for, as an operator's CA tooling does), and finally verifies an SECC certificate evpki issued
below it against that root alone.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from cli.main import app
from tests.conftest import ORG, TEST_PASSPHRASE, database_url, drop_database, make_csr, requires_openssl, run_openssl
from tests.foreign_operator import default_hierarchy_with_external_parents

pytestmark = [requires_openssl, pytest.mark.interop]
runner = CliRunner()


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    url, name = database_url(tmp_path)
    monkeypatch.setenv("EVPKI_HOME", str(tmp_path))
    monkeypatch.setenv("EVPKI_DATABASE_URL", url)
    monkeypatch.setenv("EVPKI_KEY_PASSPHRASE", TEST_PASSPHRASE)
    yield tmp_path
    drop_database(name)


def _evpki(*args: str, code: int = 0) -> str:
    result = runner.invoke(app, list(args))
    assert result.exit_code == code, result.output
    return result.output


def _openssl(*args: str) -> str:
    result = run_openssl(*args)
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout


def test_run_cpo_sub_ca_under_a_root_we_do_not_own(home: Path) -> None:
    config = home / "hierarchy.toml"
    config.write_text(default_hierarchy_with_external_parents(), encoding="utf-8")
    output = _evpki("init", "--config", str(config), "--org", ORG)
    assert "cpo-sub1 awaits its certificate from its external parent" in output
    assert "cpo-sub2" in output.split("waiting for those")[1]
    listed = {ca["id"]: ca for ca in json.loads(_evpki("ca", "list", "--json"))}
    assert listed["cpo-sub1"]["awaiting_certificate"] and "cpo-sub2" not in listed

    request = home / "cpo-sub1.csr"
    _evpki("ca", "request", "cpo-sub1", "--out", str(request))
    _openssl("req", "-in", str(request), "-verify", "-noout")

    # The external operator: its own root, and its signature on our request.
    operator = home / "operator"
    operator.mkdir()
    key, root, signed = operator / "root.key", operator / "root.pem", operator / "cpo-sub1.pem"
    _openssl("ecparam", "-name", "prime256v1", "-genkey", "-noout", "-out", str(key))
    _openssl(
        "req", "-x509", "-new", "-key", str(key), "-subj", "/C=DE/O=Ecosystem Operator/CN=V2G Root CA/DC=V2G",
        "-days", "7300", "-addext", "basicConstraints=critical,CA:TRUE",
        "-addext", "keyUsage=critical,keyCertSign,cRLSign", "-out", str(root),
    )  # fmt: skip
    _openssl(
        "x509", "-req", "-in", str(request), "-CA", str(root), "-CAkey", str(key),
        "-copy_extensions", "copyall", "-days", "1460", "-out", str(signed),
    )  # fmt: skip

    # Without the root it cannot be placed; with it, installed, and cpo-sub2 is created below it.
    assert "install.chain" in _evpki("ca", "install", "cpo-sub1", "--certificate", str(signed), code=4)
    report = json.loads(
        _evpki("ca", "install", "cpo-sub1", "--certificate", str(signed), "--chain", str(root), "--json")
    )
    assert report["anchor"]["added"] and report["created"] == ["cpo-sub2"]
    assert report["ca"]["external_parent"] is True
    trusted = json.loads(_evpki("trust", "list", "--json"))
    assert [(root["use"], root["source"]) for root in trusted] == [("V2GRootCertificate", "ca-install")]

    chain = home / "cpo-sub2-chain.pem"
    _evpki("ca", "export", "cpo-sub2", "--chain", "--out", str(chain))
    assert chain.read_text().count("BEGIN CERTIFICATE") == 2  # cpo-sub2, cpo-sub1: not the external root

    csr_pem, _ = make_csr("SECC-OPENSSL-1", country="DE", dc="CPO")
    csr = home / "secc.csr"
    csr.write_text(csr_pem)
    leaf = home / "secc.pem"
    _evpki(
        "cert", "issue", "--profile", "secc", "--csr", str(csr), "--secc-id", "SECC-OPENSSL-1", "--out", str(leaf)
    )  # fmt: skip
    _openssl("verify", "-CAfile", str(root), "-untrusted", str(chain), str(leaf))
