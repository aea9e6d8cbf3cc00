"""DESIGN.md's import rules, checked on the source tree.

- ``pki/`` never imports the edges (``api``, ``cli``, ``ocpp_bridge``).
- The edges import only ``pki`` and the public names (``__all__``) of its capability packages:
  never ``pki.store``, ``pki.keys`` or a module inside a package (``pki.ca.policy``).
- The packages inside ``pki/`` import each other without a cycle, in the layer order below: a
  package may import only packages of lower layers.
"""

from __future__ import annotations

import ast
import importlib
from collections import defaultdict
from pathlib import Path

EDGES = {"api", "cli", "ocpp_bridge"}
ROOT = Path(__file__).resolve().parent.parent
# Lowest first. A new capability adds a package to the layer it belongs to (ARCHITECTURE in the README).
LAYERS: tuple[frozenset[str], ...] = (
    frozenset({"core"}),
    frozenset({"store", "keys"}),
    frozenset({"runtime"}),
    frozenset({"operations"}),
    frozenset({"ca"}),
    frozenset({"revocation"}),
    frozenset({"stations", "firmware", "iso15118"}),
    # EST (issues through ca under the station registry's identities); OPCP pool services (over the
    # trust store and contract provisioning)
    frozenset({"enrollment", "opcp"}),
    frozenset({"service"}),  # the facade (pki/service.py, pki/__init__.py)
)
CAPABILITIES = frozenset().union(*LAYERS[:-1]) - {"store", "keys"}


def _imports(path: Path) -> list[tuple[str, list[str]]]:
    """``(module, names)`` of every absolute import in ``path`` (``import x.y`` gives ``("x.y", [])``)."""
    found: list[tuple[str, list[str]]] = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found.extend((alias.name, []) for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.append((node.module, [alias.name for alias in node.names]))
    return found


def _package_of(path: Path) -> str:
    parts = path.relative_to(ROOT / "pki").parts
    return parts[0] if len(parts) > 1 else "service"


def test_pki_never_imports_the_edges() -> None:
    offenders = {
        str(path.relative_to(ROOT)): module
        for path in (ROOT / "pki").rglob("*.py")
        for module, _ in _imports(path)
        if module.split(".")[0] in EDGES
    }
    assert offenders == {}


def test_the_edges_use_only_the_public_names_of_pki_and_its_capability_packages() -> None:
    offenders: list[str] = []
    for edge in sorted(EDGES):
        for path in (ROOT / edge).rglob("*.py"):
            for module, names in _imports(path):
                parts = module.split(".")
                if parts[0] != "pki":
                    continue
                where = f"{path.relative_to(ROOT)}: {module}"
                if len(parts) > 2 or (len(parts) == 2 and parts[1] not in CAPABILITIES):
                    offenders.append(f"{where} is not pki or a capability package")
                    continue
                public = set(importlib.import_module(module).__all__)
                offenders.extend(f"{where} has no public {name}" for name in names if name not in public)
    assert offenders == []


def test_every_capability_package_says_what_it_owns_and_exports_its_names() -> None:
    for name in sorted(CAPABILITIES):
        package = importlib.import_module(f"pki.{name}")
        assert package.__doc__ and len(package.__doc__.strip()) > 40, name
        assert package.__all__, name
        assert all(hasattr(package, export) for export in package.__all__), name


def test_pki_packages_import_each_other_without_a_cycle_and_only_downwards() -> None:
    layer_of = {package: index for index, layer in enumerate(LAYERS) for package in layer}
    graph: dict[str, set[str]] = defaultdict(set)
    upward: list[str] = []
    for path in (ROOT / "pki").rglob("*.py"):
        if "migrations" in path.parts:
            continue
        source = _package_of(path)
        assert source in layer_of, f"pki/{source} is in no layer of tests/test_layering.py"
        for module, names in _imports(path):
            parts = module.split(".")
            if parts[0] != "pki":
                continue
            targets = [parts[1]] if len(parts) > 1 else [name for name in names if name in layer_of]
            for target in targets:
                if target in {source, "__init__"} or target not in layer_of:
                    continue
                graph[source].add(target)
                if layer_of[target] >= layer_of[source] and source != "service":
                    upward.append(f"{path.relative_to(ROOT)} ({source}) imports {target}")
    assert upward == []
    assert {"core", "runtime", "store"} <= graph["ca"]  # the walk saw the imports it judges

    def reaches(start: str, goal: str, seen: frozenset[str] = frozenset()) -> bool:
        return any(
            nxt == goal or (nxt not in seen and reaches(nxt, goal, seen | {nxt})) for nxt in graph.get(start, ())
        )

    assert [package for package in sorted(graph) if reaches(package, package)] == []
