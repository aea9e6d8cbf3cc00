"""``evpki contract add --concurrent --priority``: several contracts per vehicle (ISO 15118-20)."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from cli.main import app

runner = CliRunner()
PCID = "WMIV2G0000000021A"


def test_concurrent_contract_with_priority(env: tuple[Path, str]) -> None:
    assert runner.invoke(app, ["contract", "add", "--emaid", "DEABCC123AB030", "--pcid", PCID]).exit_code == 0
    plain = runner.invoke(app, ["contract", "add", "--emaid", "DEABCC123AB031", "--pcid", PCID])
    assert plain.exit_code != 0 and "--concurrent" not in plain.output  # the domain's message: "add it as concurrent"
    added = runner.invoke(
        app,
        ["contract", "add", "--emaid", "DEABCC123AB031", "--pcid", PCID, "--concurrent", "--priority", "2", "--json"],
    )
    assert added.exit_code == 0, added.output
    assert json.loads(added.stdout)["priority"] == 2
