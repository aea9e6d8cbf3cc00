"""``evpki station ...`` through Typer's CliRunner and ``evpki bridge`` as a real process (start, serve, SIGTERM)."""

from __future__ import annotations

import json
import os
import signal
import socket
import ssl
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from cli.main import app
from tests.conftest import TEST_PASSPHRASE, _copy_database, drop_database

PASSWORD = "station-password-0001"


@pytest.fixture
def env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, _fresh_template: tuple[Path, str | None]) -> Iterator[Path]:
    url, name = _copy_database(_fresh_template, tmp_path)
    monkeypatch.setenv("EVPKI_HOME", str(tmp_path))
    monkeypatch.setenv("EVPKI_DATABASE_URL", url)
    monkeypatch.setenv("EVPKI_KEY_PASSPHRASE", TEST_PASSPHRASE)
    yield tmp_path
    drop_database(name)


def run(*args: str, stdin: str | None = None) -> tuple[int, str]:
    result = CliRunner().invoke(app, list(args), input=stdin)
    return result.exit_code, result.output


def test_station_lifecycle(env: Path) -> None:
    assert run("station", "add", "CS-1", "--serial", "SN-1")[0] == 0
    password_file = env / "pw"
    password_file.write_text(PASSWORD + "\n")
    code, _ = run("station", "add", "CS-2", "--serial", "SN-2", "--profile", "2", "--password-file", str(password_file))
    assert code == 0
    code, output = run("station", "list", "--json")
    assert code == 0
    listed = {s["identity"]: s for s in json.loads(output)}
    assert listed["CS-1"]["securityProfile"] == 3 and not listed["CS-1"]["hasPassword"]
    assert listed["CS-2"]["securityProfile"] == 2 and listed["CS-2"]["hasPassword"]
    assert PASSWORD not in output

    assert run("station", "disable", "CS-1")[0] == 0
    assert json.loads(run("station", "show", "CS-1", "--json")[1])["status"] == "disabled"
    assert run("station", "enable", "CS-1")[0] == 0
    assert "active" in run("station", "show", "CS-1")[1]

    new_password = "another-password-0002"
    assert run("station", "passwd", "CS-2", stdin=f"{new_password}\n{new_password}\n")[0] == 0
    assert run("station", "remove", "CS-2", "--yes")[0] == 0
    assert [s["identity"] for s in json.loads(run("station", "list", "--json")[1])] == ["CS-1"]


@pytest.mark.parametrize(
    ("args", "code"),
    [
        (("station", "add", "CS-1", "--serial", "SN-1"), 6),  # already registered: conflict
        (("station", "show", "CS-NONE"), 5),
        (("station", "add", "CS-9", "--serial", "SN-9", "--profile", "1"), 2),
        (("station", "add", "bad/identity", "--serial", "SN-9"), 3),
    ],
)
def test_station_errors_have_documented_exit_codes(env: Path, args: tuple[str, ...], code: int) -> None:
    run("station", "add", "CS-1", "--serial", "SN-1")
    assert run(*args)[0] == code


def test_a_short_password_is_invalid_input(env: Path) -> None:
    code, output = run("station", "add", "CS-3", "--serial", "SN-3", "--profile", "2", stdin="short\nshort\n")
    assert code == 3 and "16-40" in output


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_the_bridge_command_serves_tls_and_stops_on_sigterm(env: Path) -> None:
    port = _free_port()
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "cli.main",
            "bridge",
            "--port",
            "0",
            "--basic-port",
            str(port),
            "--log-level",
            "warning",
        ],
        env={**os.environ, "PYTHONFAULTHANDLER": "1"},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        cwd=Path(__file__).resolve().parents[2],
    )
    try:
        context = ssl.create_default_context()
        context.check_hostname, context.verify_mode = False, ssl.CERT_NONE
        deadline = time.monotonic() + 60
        while True:  # the process is up once its TLS listener answers a handshake
            try:
                with (
                    socket.create_connection(("127.0.0.1", port), timeout=5) as raw,
                    context.wrap_socket(raw, server_hostname="localhost") as tls,
                ):
                    assert tls.version() in ("TLSv1.2", "TLSv1.3")
                break
            except OSError:
                if process.poll() is not None or time.monotonic() > deadline:
                    pytest.fail(f"bridge did not start: {process.communicate()[1].decode()[-2000:]}")
                time.sleep(0.1)
        assert (env / "bridge").stat().st_mode & 0o777 == 0o700
        process.send_signal(signal.SIGTERM)
        try:
            code = process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.send_signal(signal.SIGABRT)  # PYTHONFAULTHANDLER: every thread's stack on stderr
            stderr = process.communicate(timeout=30)[1].decode()
            pytest.fail(f"bridge still running 30 s after SIGTERM: {stderr[-6000:]}")
        assert code == 0, process.communicate()[1].decode()[-2000:]
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
