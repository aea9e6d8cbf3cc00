"""DESIGN.md's import rule: ``pki/`` never imports the edges (``api``, ``cli``, ``ocpp_bridge``)."""

from __future__ import annotations

import ast
from pathlib import Path

EDGES = {"api", "cli", "ocpp_bridge"}
ROOT = Path(__file__).resolve().parent.parent


def imported_top_levels(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module.split(".")[0])
    return names


def test_pki_never_imports_the_edges() -> None:
    offenders = {
        str(path.relative_to(ROOT)): sorted(imported_top_levels(path) & EDGES)
        for path in (ROOT / "pki").rglob("*.py")
        if imported_top_levels(path) & EDGES
    }
    assert offenders == {}
