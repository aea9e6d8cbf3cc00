"""``evpki opcp``: clients with their secret shown once (only the hash stored), listing, removal, key rotation."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from cli.main import app
from pki import PKI
from tests.conftest import TEST_PASSPHRASE

runner = CliRunner()


@pytest.fixture
def env(fresh_pki: PKI, monkeypatch: pytest.MonkeyPatch) -> PKI:
    monkeypatch.setenv("EVPKI_HOME", str(fresh_pki.settings.home))
    monkeypatch.setenv("EVPKI_DATABASE_URL", fresh_pki.settings.resolved_database_url)
    monkeypatch.setenv("EVPKI_KEY_PASSPHRASE", TEST_PASSPHRASE)
    return fresh_pki


def test_a_client_is_added_listed_and_removed(env: PKI) -> None:
    added = runner.invoke(
        app, ["opcp", "client", "add", "--role", "oem", "--name", "acme-oem", "--wmi", "WMI", "--wmi", "abc"]
    )
    assert added.exit_code == 0, added.output
    secret = next(line.split("=", 1)[1] for line in added.stdout.splitlines() if line.startswith("client_secret="))
    client_id = next(line.split("=", 1)[1] for line in added.stdout.splitlines() if line.startswith("client_id="))
    grant = env.opcp.issue_token(client_id=client_id, client_secret=secret, audience="http://127.0.0.1:8080/opcp")
    assert grant.access_token.count(".") == 2
    listed = runner.invoke(app, ["opcp", "client", "list", "--json"])
    assert listed.exit_code == 0 and secret not in listed.stdout
    assert json.loads(listed.stdout)[0]["wmis"] == ["ABC", "WMI"]
    database = Path(env.settings.home)
    assert all(secret.encode() not in p.read_bytes() for p in database.glob("evpki.db*"))
    no_wmi = runner.invoke(app, ["opcp", "client", "add", "--role", "oem", "--name", "no-wmi"])
    assert no_wmi.exit_code == 3 and "--wmi" in no_wmi.stderr
    again = runner.invoke(app, ["opcp", "client", "add", "--role", "cpo", "--name", "acme-oem"])
    assert again.exit_code == 6
    assert runner.invoke(app, ["opcp", "key", "rotate", "--yes"]).exit_code == 0
    assert runner.invoke(app, ["opcp", "client", "remove", "acme-oem"]).exit_code == 0
    assert runner.invoke(app, ["opcp", "client", "remove", "acme-oem"]).exit_code == 5
