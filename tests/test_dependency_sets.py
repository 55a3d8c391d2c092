"""One dependency set per image, each complete for the code that image runs and nothing more.

pyproject.toml holds the core (both images), ``serving`` (the runtime image), ``jobs`` (the jobs
image: jobs, operator, ``mlflow server``; it includes ``serving``) and ``dev``. The Dockerfiles'
``requirements`` stage turns them into the files pip installs, layer by layer. Checked here
against the installed venv (same constraints); the slow test resolves both files against the
package index the way the image build does.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import zipfile
from importlib import metadata
from pathlib import Path

import pytest
from packaging.utils import canonicalize_name

from support.dependencies import (
    BUILD_TOOLS,
    PROJECT,
    constraints,
    imported_modules,
    installed_closure,
    project_table,
    providers,
    requirements,
)
from support.dockerfiles import parse_dockerfile, stage_named
from support.kustomize import REPO

DOCKERFILES = ("Dockerfile.runtime", "Dockerfile.jobs")
PACKAGES = {
    "contract": REPO / "runtime" / "artpulse_contract",
    "runtime": REPO / "runtime" / "artpulse_runtime",
    "jobs": REPO / "jobs" / "artpulse_jobs",
    "operator": REPO / "operator" / "artpulse_operator",
}
FIRST_PARTY = {"artpulse_contract", "artpulse_runtime", "artpulse_jobs", "artpulse_operator"}
NOT_FOR_SERVING = {"kubernetes", "kopf", "pyarrow", "matplotlib", "mlflow", "mlserver-mlflow",
                   "alembic", "flask", "gunicorn", "docker"}  # fmt: skip
"""What the runtime image must not carry: the jobs', operator's and MLflow server's packages."""


def _names(extras: tuple[str, ...]) -> set[str]:
    return set(installed_closure(requirements(*extras)))


@pytest.mark.parametrize("extras", [(), ("serving",), ("serving", "jobs"), ("dev",)])
def test_every_package_of_every_set_is_pinned_at_the_installed_version(
    extras: tuple[str, ...],
) -> None:
    pins = constraints()
    for requirement in requirements(*extras):
        assert "==" in str(requirement.specifier), f"pyproject pin missing: {requirement}"
    closure = installed_closure(requirements(*extras))
    for name, requirement in closure.items():
        assert name in pins, f"{name} is installed but not pinned in constraints.txt"
        assert metadata.version(name) == pins[name], f"venv has another {name} than pinned"
        assert requirement.specifier.contains(pins[name], prereleases=True), requirement
    assert len(closure) > 30


def test_the_serving_set_leaves_out_the_jobs_operator_and_server_packages() -> None:
    serving = _names(("serving",))
    assert serving & NOT_FOR_SERVING == set()
    assert {"mlserver", "mlflow-skinny", "scikit-learn"} <= serving
    assert NOT_FOR_SERVING - {"mlserver-mlflow"} <= _names(("jobs",))


@pytest.mark.parametrize(
    ("package", "extras"),
    [("contract", ()), ("runtime", ("serving",)), ("jobs", ("jobs",)), ("operator", ("jobs",))],
)
def test_each_set_provides_every_module_its_code_imports(
    package: str, extras: tuple[str, ...]
) -> None:
    available = _names(extras)
    imported = imported_modules(PACKAGES[package]) - FIRST_PARTY
    assert imported, package
    missing = {module for module in imported if not providers(module) & available}
    assert not missing, f"artpulse_{package} imports {sorted(missing)}, not in its set"


def test_dev_pulls_in_both_image_sets_and_make_venv_installs_it() -> None:
    assert _names(("serving", "jobs")) <= _names(("dev",))
    assert "-e '.[dev]'" in (REPO / "Makefile").read_text()


def _requirements_stage(tmp_path: Path) -> dict[str, list[str]]:
    """Run the Dockerfiles' `requirements` stage on a copy of pyproject.toml; its files."""
    (stage,) = {" ".join(stage_named(parse_dockerfile(REPO / f), "requirements").values("RUN"))
                for f in DOCKERFILES}  # fmt: skip
    shutil.copy(REPO / "pyproject.toml", tmp_path)
    environment = {**os.environ, "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}"}
    subprocess.run(["sh", "-c", stage], cwd=tmp_path, env=environment, check=True, timeout=60)
    return {name: (tmp_path / f"{name}.txt").read_text().split() for name in ("serving", "jobs")}


def test_the_requirements_stage_writes_the_core_plus_serving_and_the_jobs_additions(
    tmp_path: Path,
) -> None:
    files = _requirements_stage(tmp_path)
    project = project_table()
    optional: dict[str, list[str]] = project["optional-dependencies"]  # type: ignore[assignment]
    core: list[str] = project["dependencies"]  # type: ignore[assignment]
    assert files["serving"] == [*core, *optional["serving"]]
    assert files["jobs"] == [r for r in optional["jobs"] if not r.startswith(f"{PROJECT}[")]
    assert files["jobs"] and f"{PROJECT}[serving]" in optional["jobs"]


@pytest.mark.slow
def test_both_sets_resolve_from_the_index_to_the_pins(tmp_path: Path) -> None:
    # The image build's pip steps, dry-run in a fresh venv: the pinned tools, then each file
    # with constraints.txt, wheels only; then the project's wheel, which holds every module.
    files = _requirements_stage(tmp_path)
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    pip = [str(venv / "bin" / "python"), "-m", "pip", "--disable-pip-version-check", "-q"]
    stages = parse_dockerfile(REPO / DOCKERFILES[0])
    install = " ".join(stage_named(stages, "serving-deps").values("RUN"))
    tools = re.findall(r'"((?:pip|setuptools|wheel)==[^"]+)"', install)
    assert len(tools) == 3, install
    subprocess.run([*pip, "install", "--only-binary=:all:", *tools], check=True, timeout=300)
    pins = constraints()
    for name, lines in files.items():
        listed = tmp_path / f"{name}.txt"
        report = tmp_path / f"{name}.json"
        subprocess.run(
            [*pip, "install", "--dry-run", "--ignore-installed", "--only-binary=:all:",
             "--report", str(report), "-c", str(REPO / "constraints.txt"), "-r", str(listed)],
            check=True, timeout=600,
        )  # fmt: skip
        for item in json.loads(report.read_text())["install"]:
            package = str(canonicalize_name(item["metadata"]["name"]))
            version = str(item["metadata"]["version"])
            if package not in BUILD_TOOLS:
                assert pins.get(package) == version, f"{name}: {package} {version} resolved"
        assert lines
    source = tmp_path / "src"
    ignored = shutil.ignore_patterns("__pycache__")
    for package in PACKAGES.values():
        target = source / package.relative_to(REPO)
        shutil.copytree(package, target, ignore=ignored)
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(REPO / name, source / name)
    wheels = tmp_path / "wheels"
    subprocess.run(
        [*pip, "wheel", "--no-deps", "--no-build-isolation", "-w", str(wheels), str(source)],
        check=True,
        timeout=300,
    )
    (wheel,) = wheels.glob("artpulse-*.whl")
    with zipfile.ZipFile(wheel) as archive:
        names = set(archive.namelist())
    for package in PACKAGES.values():
        modules = {p.relative_to(package.parent).as_posix() for p in package.rglob("*.py")}
        assert modules <= names, sorted(modules - names)
