"""``evpki est secret add|list|revoke`` through the Typer app."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from cli.main import app

runner = CliRunner()


def test_secret_add_list_revoke(env: tuple[Path, str]) -> None:
    assert runner.invoke(app, ["station", "add", "CP-EST-CLI", "--serial", "SN-EST-CLI"]).exit_code == 0
    added = runner.invoke(app, ["est", "secret", "add", "--identity", "CP-EST-CLI", "--ttl", "2h"])
    assert added.exit_code == 0, added.output
    secret = next(line for line in added.stdout.splitlines() if line.startswith("est_"))
    assert "shown only this once" in added.stdout and "curl -u 'CP-EST-CLI:<secret>'" in added.stdout
    as_json = runner.invoke(app, ["est", "secret", "add", "--identity", "DE*ABC*E1*1", "--profile", "secc", "--json"])
    second = json.loads(as_json.stdout)
    assert second["secret"].startswith("est_") and second["secret"] != secret and second["profile"] == "secc"
    listed = json.loads(runner.invoke(app, ["est", "secret", "list", "--json"]).stdout)
    assert [(s["identity"], s["status"]) for s in listed] == [("CP-EST-CLI", "active"), ("DE*ABC*E1*1", "active")]
    assert all("secret" not in s for s in listed)
    revoked = runner.invoke(app, ["est", "secret", "revoke", str(second["id"])])
    assert revoked.exit_code == 0 and "revoked" in revoked.stdout
    again = runner.invoke(app, ["est", "secret", "revoke", str(second["id"])])
    assert again.exit_code == 6 and "revoked already" in again.stderr
    table = runner.invoke(app, ["est", "secret", "list", "--all"])
    assert "revoked" in table.stdout and "active" in table.stdout
    only = json.loads(runner.invoke(app, ["est", "secret", "list", "--identity", "CP-EST-CLI", "--json"]).stdout)
    assert [s["identity"] for s in only] == ["CP-EST-CLI"]


def test_est_help_explains_enrollment() -> None:
    text = runner.invoke(app, ["est", "--help"]).stdout
    assert "RFC 7030" in text and "simplereenroll" in text and "--est-port" in text
    serve = runner.invoke(app, ["serve", "--help"]).stdout
    assert "--est-port" in serve and "--est-server-name" in serve
