"""``evpki cert issue-batch``: a directory of CSRs issued in batches, resumable, refusals reported."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from cli.main import app
from pki import PKI
from tests.conftest import ORG, make_csr, make_settings

runner = CliRunner()


def _csr_dir(tmp_path: Path, stations: list[str]) -> Path:
    directory = tmp_path / "csrs"
    directory.mkdir()
    for station in stations:
        (directory / f"{station}.csr.pem").write_text(make_csr(f"SN-{station}", organization=ORG)[0])
    return directory


def test_issues_every_csr_resumes_and_reports_refusals(env: tuple[Path, str], tmp_path: Path) -> None:
    home, url = env
    stations = [f"CP-CLI-{i}" for i in range(5)]
    csrs = _csr_dir(tmp_path, stations)
    (csrs / "CP-CLI-BAD.csr").write_text("not a CSR")
    (csrs / "notes.txt").write_text("not a CSR file name: ignored")
    out = tmp_path / "out"
    args = ["cert", "issue-batch", "--csr-dir", str(csrs), "--out-dir", str(out), "--station-serial-from", "cn"]

    first = runner.invoke(app, [*args, "--chunk", "2", "--json"])
    assert first.exit_code == 3, first.output  # the refusal's code, after issuing the rest
    summary = json.loads(first.stdout)
    assert (summary["issued"], summary["skipped"]) == (5, 0)
    assert [r["name"] for r in summary["refused"]] == ["CP-CLI-BAD"]
    assert summary["certificatesPerSecond"] > 0
    assert first.stderr.strip().startswith("error: 1 of 6 CSRs refused")
    for station in stations:
        assert (out / f"{station}.pem").read_text().count("BEGIN CERTIFICATE") == 2  # leaf and cso-sub

    # An interrupted run: two certificates stored but never written out. The rerun writes them from
    # the database instead of issuing them a second time.
    lost = [out / f"{station}.pem" for station in stations[:2]]
    serials = {path.name: path.read_text() for path in lost}
    for path in lost:
        path.unlink()
    (csrs / "CP-CLI-BAD.csr").unlink()
    pki = PKI.open(make_settings(home, url))
    records = pki.audit.count()
    second = runner.invoke(app, [*args, "--json"])
    assert second.exit_code == 0, second.output
    assert (json.loads(second.stdout)["issued"], json.loads(second.stdout)["skipped"]) == (2, 3)
    assert {path.name: path.read_text() for path in lost} == serials
    assert pki.audit.count() == records  # nothing issued twice
    assert pki.audit.verify().ok
    pki.close()


def test_nothing_issued_leaves_no_trace(env: tuple[Path, str], tmp_path: Path) -> None:
    csrs = tmp_path / "csrs"
    csrs.mkdir()
    (csrs / "CP-CLI-X.csr").write_text("not a CSR")
    out = tmp_path / "out"
    result = runner.invoke(app, ["cert", "issue-batch", "--csr-dir", str(csrs), "--out-dir", str(out)])
    assert result.exit_code == 3
    assert "refused CP-CLI-X" in result.stdout
    assert not out.exists()
