"""The project's dependency sets (core + extras in pyproject.toml), constraints.txt, and the
installed distributions each set pulls in."""

from __future__ import annotations

import ast
import sys
import tomllib
from importlib import metadata
from pathlib import Path

from packaging.markers import default_environment
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from support.kustomize import REPO

PROJECT = "artpulse"
BUILD_TOOLS = {"pip", "setuptools", "wheel"}
"""Pinned on the Dockerfiles' own command line; pip is never in constraints.txt."""


def constraints() -> dict[str, str]:
    """constraints.txt as canonical name -> pinned version."""
    pins: dict[str, str] = {}
    for line in (REPO / "constraints.txt").read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if line:
            name, _, version = line.partition("==")
            pins[str(canonicalize_name(name))] = version.strip()
    return pins


def project_table() -> dict[str, object]:
    """pyproject.toml's ``[project]`` table."""
    return dict(tomllib.loads((REPO / "pyproject.toml").read_text())["project"])


def requirements(*extras: str) -> list[Requirement]:
    """The core dependencies plus those of ``extras``, self-references expanded."""
    project = project_table()
    optional: dict[str, list[str]] = project["optional-dependencies"]  # type: ignore[assignment]
    found = [Requirement(text) for text in project["dependencies"]]  # type: ignore[attr-defined]
    pending, seen = list(extras), set()
    while pending:
        extra = pending.pop()
        if extra in seen:
            continue
        seen.add(extra)
        for text in optional[extra]:
            requirement = Requirement(text)
            if canonicalize_name(requirement.name) == PROJECT:
                pending.extend(requirement.extras)
            else:
                found.append(requirement)
    return found


def installed_closure(roots: list[Requirement]) -> dict[str, Requirement]:
    """Every distribution ``roots`` pull in (by the installed metadata), with the requirement
    that first pulled it, keyed by canonical name."""
    environment = {key: str(value) for key, value in default_environment().items()}
    queue = list(roots)
    seen: dict[str, Requirement] = {}
    expanded: set[tuple[str, tuple[str, ...]]] = set()
    while queue:
        requirement = queue.pop()
        name = str(canonicalize_name(requirement.name))
        extras = tuple(sorted(requirement.extras))
        if (name, extras) in expanded or name in BUILD_TOOLS:
            continue
        expanded.add((name, extras))
        seen.setdefault(name, requirement)
        for text in metadata.requires(name) or []:
            dependency = Requirement(text)
            marker = dependency.marker
            if marker is None or any(
                marker.evaluate({**environment, "extra": extra}) for extra in extras or ("",)
            ):
                queue.append(dependency)
    return seen


def imported_modules(package_dir: Path) -> set[str]:
    """Top-level names of the modules a package's source imports (absolute imports only)."""
    found: set[str] = set()
    for path in package_dir.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                found.update(alias.name.split(".")[0] for alias in node.names)
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                found.add(node.module.split(".")[0])
    return found - set(sys.stdlib_module_names) - {"__future__"}


def providers(module: str) -> set[str]:
    """Canonical names of the installed distributions that provide top-level ``module``."""
    mapping = metadata.packages_distributions()
    return {str(canonicalize_name(name)) for name in mapping.get(module, [])}
