"""The user-visible surface: the OpenAPI document and the ``--help`` of every CLI command.

A refactoring that changes no behaviour must leave both byte for byte as they were:

    python bench/surface.py dump before.json     # on the old tree
    python bench/surface.py dump after.json      # on the new tree
    python bench/surface.py compare before.json after.json

``compare`` prints one line per difference and exits 1 when there is any, else prints a table
of what was compared and exits 0. The app is built without opening a database (the OpenAPI
document needs none); the help texts come from Typer's own runner, at a fixed terminal width.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Any

os.environ.setdefault("COLUMNS", "120")
os.environ.setdefault("TERM", "dumb")


def _commands(command: Any, prefix: tuple[str, ...]) -> list[tuple[str, ...]]:
    """Every command path below a Typer/Click command, the command itself first."""
    found = [prefix]
    for name, sub in sorted(getattr(command, "commands", {}).items()):
        found.extend(_commands(sub, (*prefix, name)))
    return found


def dump() -> dict[str, Any]:
    import typer
    from typer.testing import CliRunner

    from api.app import create_app
    from cli.main import app as cli_app

    openapi = create_app().openapi()
    runner = CliRunner()
    helps: dict[str, str] = {}
    for path in _commands(typer.main.get_command(cli_app), ()):
        result = runner.invoke(cli_app, [*path, "--help"], terminal_width=120, env={"COLUMNS": "120"})
        helps[" ".join(("evpki", *path))] = f"exit {result.exit_code}\n{result.output}"
    return {"openapi": openapi, "help": helps}


def _flatten(value: Any, path: str = "") -> dict[str, Any]:
    if isinstance(value, dict):
        out: dict[str, Any] = {}
        for key, item in value.items():
            out.update(_flatten(item, f"{path}/{key}"))
        return out or {path: {}}
    if isinstance(value, list):
        out = {}
        for index, item in enumerate(value):
            out.update(_flatten(item, f"{path}[{index}]"))
        return out or {path: []}
    return {path: value}


def compare(before: dict[str, Any], after: dict[str, Any]) -> list[str]:
    differences = []
    old, new = _flatten(before["openapi"]), _flatten(after["openapi"])
    for key in sorted(old.keys() | new.keys()):
        if old.get(key, "<absent>") != new.get(key, "<absent>"):
            differences.append(f"openapi {key}: {old.get(key, '<absent>')!r} -> {new.get(key, '<absent>')!r}")
    for command in sorted(before["help"].keys() | after["help"].keys()):
        if before["help"].get(command) != after["help"].get(command):
            differences.append(f"help of `{command}` differs")
    return differences


def main(argv: list[str]) -> int:
    if len(argv) == 2 and argv[0] == "dump":
        Path(argv[1]).write_text(json.dumps(dump(), indent=1, sort_keys=True) + "\n", encoding="utf-8")
        return 0
    if len(argv) == 3 and argv[0] == "compare":
        before, after = (json.loads(Path(name).read_text(encoding="utf-8")) for name in argv[1:])
        differences = compare(before, after)
        for line in differences:
            print(line)
        if differences:
            return 1
        print(f"{'compared':<28}{'items':>8}")
        print(f"{'OpenAPI leaves':<28}{len(_flatten(after['openapi'])):>8}")
        print(f"{'CLI commands (--help)':<28}{len(after['help']):>8}")
        print("identical")
        return 0
    print(__doc__, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    sys.exit(main(sys.argv[1:]))
