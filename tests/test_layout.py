"""Imports go one way: the layout the README describes, read from the code's own imports.

- ``artpulse_contract`` (names, features, settings, registry, events, backoff) imports nothing
  else of ArtPulse;
- the operator imports the contract only, and nothing imports the operator;
- the jobs import the serving adapter (``artpulse_runtime``) only where they start a server;
- no ``artpulse`` sub-command imports another (what they share is in ``commands.options`` and
  ``artpulse_jobs.reporting``);
- the serving adapter imports the contract, never the jobs.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
PACKAGES = {
    "artpulse_contract": REPO / "runtime" / "artpulse_contract",
    "artpulse_runtime": REPO / "runtime" / "artpulse_runtime",
    "artpulse_jobs": REPO / "jobs" / "artpulse_jobs",
    "artpulse_operator": REPO / "operator" / "artpulse_operator",
}
SERVER_STARTERS = {
    "artpulse_jobs.serving.server",
    "artpulse_jobs.commands.serve",
    "artpulse_jobs.commands.api_key",
}
"""The jobs modules that start the serving adapter (or mint keys for its guard)."""
SHARED_BY_COMMANDS = {"artpulse_jobs.commands.options"}


def _module_name(package: str, path: Path) -> str:
    parts = path.relative_to(PACKAGES[package]).with_suffix("").parts
    parts = parts[:-1] if parts[-1] == "__init__" else parts
    return ".".join((package, *parts))


def _imports(path: Path) -> Iterator[str]:
    """Every module ``path`` imports by absolute name."""
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            yield node.module
            yield from (f"{node.module}.{alias.name}" for alias in node.names)


def _edges() -> list[tuple[str, str]]:
    """(importer, imported) for every ArtPulse module importing another ArtPulse module."""
    edges = []
    for package, folder in PACKAGES.items():
        for path in sorted(folder.rglob("*.py")):
            importer = _module_name(package, path)
            for imported in _imports(path):
                if imported.split(".")[0] in PACKAGES:
                    edges.append((importer, imported))
    return edges


EDGES = _edges()


def _violations(rule: str) -> list[str]:
    found = []
    for importer, imported in EDGES:
        source, target = importer.split(".")[0], imported.split(".")[0]
        broken = {
            "contract imports only itself": source == "artpulse_contract"
            and target != "artpulse_contract",
            "nothing imports the operator": target == "artpulse_operator"
            and source != "artpulse_operator",
            "the operator imports only the contract": source == "artpulse_operator"
            and target not in ("artpulse_operator", "artpulse_contract"),
            "the adapter never imports the jobs": source == "artpulse_runtime"
            and target == "artpulse_jobs",
            "only the server starters import the adapter": source == "artpulse_jobs"
            and target == "artpulse_runtime"
            and importer not in SERVER_STARTERS,
            "no command imports another": importer.startswith("artpulse_jobs.commands.")
            and imported.startswith("artpulse_jobs.commands.")
            and not any(imported.startswith(shared) for shared in SHARED_BY_COMMANDS),
        }[rule]
        if broken:
            found.append(f"{importer} imports {imported}")
    return found


@pytest.mark.parametrize(
    "rule",
    [
        "contract imports only itself",
        "nothing imports the operator",
        "the operator imports only the contract",
        "the adapter never imports the jobs",
        "only the server starters import the adapter",
        "no command imports another",
    ],
)
def test_imports_follow_the_layout(rule: str) -> None:
    assert _violations(rule) == []


def test_the_layout_is_read_from_real_imports() -> None:
    # The rules above would pass on an empty graph: make sure the reader sees the code.
    assert ("artpulse_jobs.commands.drift", "artpulse_jobs.commands.options") in EDGES
    assert ("artpulse_operator.cycle", "artpulse_contract.registry.lookups") in EDGES
