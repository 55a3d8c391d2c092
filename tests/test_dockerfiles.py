"""The two Dockerfiles: lint-clean, multi-stage, pinned, non-root, and what they install resolves.

No Docker engine runs here, so the images are checked by reading them, by applying
``.dockerignore`` to the checkout, by checking every dependency against constraints.txt, by
checking that the commands the manifests run exist in the installed package, and (slow) by
replaying the Dockerfiles' pip steps against the package index in a fresh virtualenv.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
import tomllib
import zipfile
from importlib import import_module, metadata
from pathlib import Path

import click
import pytest
from packaging.markers import default_environment
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from artpulse_jobs.serving.server import SERVER_MODULE
from support.dockerfiles import Stage, context_files, copy_sources, parse_dockerfile
from support.kustomize import OVERLAYS, REPO, Obj, containers, render_overlay, workloads

DOCKERFILES = ("Dockerfile.runtime", "Dockerfile.jobs")
HADOLINT = Path(sys.executable).parent / "hadolint"
PINNED_BASE = re.compile(r"^python:3\.11\.\d+-slim(-[a-z]+)?$")
COMPILERS = re.compile(r"\b(gcc|g\+\+|clang|build-essential|make|cc|python3-dev|libpq-dev)\b")
OCI_LABELS = ("title", "description", "version", "revision", "source", "licenses")
NON_ROOT_UID = 10001
# Build tools the Dockerfiles pin on their own command line; pip is never in constraints.txt.
BUILD_TOOLS = {"pip", "setuptools", "wheel"}


def _stages(name: str) -> list[Stage]:
    return parse_dockerfile(REPO / name)


def _constraints() -> dict[str, str]:
    pins: dict[str, str] = {}
    for line in (REPO / "constraints.txt").read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if line:
            name, _, version = line.partition("==")
            pins[str(canonicalize_name(name))] = version.strip()
    return pins


def _project_dependencies() -> list[Requirement]:
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    return [Requirement(text) for text in project["dependencies"]]


@pytest.mark.parametrize("dockerfile", DOCKERFILES)
def test_hadolint_finds_nothing(dockerfile: str) -> None:
    result = subprocess.run(
        [str(HADOLINT), "--format", "json", dockerfile],
        cwd=REPO,
        capture_output=True,
        text=True,
        check=False,
    )
    findings = json.loads(result.stdout or "[]")
    assert findings == [], "\n".join(f"{f['line']}: {f['code']} {f['message']}" for f in findings)
    assert result.returncode == 0


def test_hadolint_does_flag_a_bad_dockerfile(tmp_path: Path) -> None:
    # The lint above proves something only if hadolint reports what it should.
    bad = tmp_path / "Dockerfile"
    bad.write_text("FROM python\nRUN pip install requests\n")
    result = subprocess.run(
        [str(HADOLINT), "--format", "json", str(bad)], capture_output=True, text=True, check=False
    )
    codes = {finding["code"] for finding in json.loads(result.stdout)}
    assert {"DL3006", "DL3013", "DL3042"} <= codes


@pytest.mark.parametrize("dockerfile", DOCKERFILES)
def test_structure(dockerfile: str) -> None:
    stages = _stages(dockerfile)
    assert len(stages) >= 2, "multi-stage: a build stage and a slim final stage"
    for stage in stages:
        assert PINNED_BASE.match(stage.base), f"base image not pinned to a version: {stage.base}"
    final = stages[-1]
    assert final.values("USER") == [f"{NON_ROOT_UID}:{NON_ROOT_UID}"]
    assert not any(COMPILERS.search(run) for run in final.values("RUN")), final.values("RUN")
    assert not copy_sources(final) or all(
        not src.endswith(("pyproject.toml", "constraints.txt")) for src, _ in copy_sources(final)
    ), "the final stage copies the venv, not the sources"
    assert any("--from=build" in value for value in final.values("COPY"))
    labels = " ".join(final.values("LABEL"))
    for label in OCI_LABELS:
        assert f"org.opencontainers.image.{label}=" in labels, label
    build_runs = " ".join(stages[0].values("RUN"))
    assert "-c constraints.txt ." in build_runs
    assert "--only-binary=:all:" in build_runs


def test_manifests_run_as_the_image_user(tmp_path: Path) -> None:
    objects = render_overlay("dev", tmp_path)
    users = {
        template["spec"]["securityContext"]["runAsUser"]
        for _, template in workloads(objects)
        if not any(c["image"].startswith("postgres:") for c in template["spec"]["containers"])
    }
    assert users == {NON_ROOT_UID}


@pytest.mark.parametrize("dockerfile", DOCKERFILES)
def test_build_context_holds_what_copy_needs(dockerfile: str) -> None:
    kept = context_files(REPO, REPO / ".dockerignore")
    assert not [path for path in kept if "__pycache__" in path or path.startswith("tests/")]
    for stage in _stages(dockerfile):
        for source, _ in copy_sources(stage):
            present = [p for p in kept if p == source or p.startswith(source.rstrip("/") + "/")]
            assert present, f"{dockerfile}: COPY {source} but .dockerignore leaves nothing of it"
            if (REPO / source).is_dir():
                on_disk = {
                    p.relative_to(REPO).as_posix()
                    for p in (REPO / source).rglob("*.py")
                    if "__pycache__" not in p.parts
                }
                assert on_disk <= set(kept), sorted(on_disk - set(kept))


def test_every_dependency_is_pinned_in_constraints() -> None:
    # Walk the installed dependency closure of the project's runtime requirements: every
    # package `pip install -c constraints.txt .` pulls in must be pinned, at the version the
    # venv (installed from the same constraints) holds.
    pins = _constraints()
    environment = {key: str(value) for key, value in default_environment().items()}
    queue = list(_project_dependencies())
    for requirement in queue:
        assert "==" in str(requirement.specifier), f"pyproject pin missing: {requirement}"
    seen: set[tuple[str, tuple[str, ...]]] = set()
    while queue:
        requirement = queue.pop()
        name = str(canonicalize_name(requirement.name))
        extras = tuple(sorted(requirement.extras))
        if (name, extras) in seen or name in BUILD_TOOLS:
            continue
        seen.add((name, extras))
        assert name in pins, f"{name} is installed by the images but not pinned in constraints"
        assert requirement.specifier.contains(pins[name], prereleases=True), (
            f"constraints pin {name}=={pins[name]} but something requires {requirement}"
        )
        assert metadata.version(name) == pins[name], f"venv has another {name} than pinned"
        for text in metadata.requires(name) or []:
            dependency = Requirement(text)
            marker = dependency.marker
            if marker is None or any(
                marker.evaluate({**environment, "extra": extra}) for extra in extras or ("",)
            ):
                queue.append(dependency)
    assert len({name for name, _ in seen}) > 50


def _commands(objects: list[Obj]) -> list[list[str]]:
    commands = []
    for _, template in workloads(objects):
        for container in containers(template["spec"]):
            if "command" in container:
                commands.append([*container["command"], *container.get("args", [])])
    return commands


def _options(command: click.Command) -> set[str]:
    return {option for param in command.params for option in param.opts + param.secondary_opts}


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_manifest_commands_exist_in_the_images(overlay: str, tmp_path: Path) -> None:
    from mlflow.cli import server as mlflow_server

    from artpulse_jobs.cli import main as artpulse

    commands = _commands(render_overlay(overlay, tmp_path))
    programs = {command[0] for command in commands}
    assert programs == {"artpulse", "mlflow", "python"}
    for command in commands:
        program, sub, rest = command[0], command[1], command[2:]
        if program == "python":  # the serving image's guarded server
            assert command[1:] == ["-m", SERVER_MODULE, "/app/runtime"]
            assert import_module(f"{SERVER_MODULE}.main").main
            continue
        group = {"artpulse": artpulse, "mlflow": None}[program]
        if program == "mlflow":
            assert sub == "server"
            target: click.Command = mlflow_server
        else:
            assert isinstance(group, click.Group)
            found = group.get_command(click.Context(group), sub)
            assert found is not None, f"`{program} {sub}` is not a command"
            target = found
        unknown = {t for t in rest if t.startswith("--")} - _options(target)
        assert not unknown, f"`{program} {sub}` has no options {sorted(unknown)}"


def test_runtime_image_serves_the_checked_in_model_settings() -> None:
    final = _stages("Dockerfile.runtime")[-1]
    copied = dict(copy_sources(final))
    for name in ("runtime/settings.json", "runtime/model-settings.json"):
        assert copied.get(name) == "/app/runtime/", f"{name} is not copied to /app/runtime/"
    model_settings = json.loads((REPO / "runtime" / "model-settings.json").read_text())
    module_name, _, class_name = model_settings["implementation"].rpartition(".")
    assert hasattr(import_module(module_name), class_name)
    entrypoint = json.loads(final.values("ENTRYPOINT")[0])
    assert entrypoint == ["python", "-m", SERVER_MODULE, "/app/runtime"]
    jobs_entrypoint = json.loads(_stages("Dockerfile.jobs")[-1].values("ENTRYPOINT")[0])
    assert jobs_entrypoint == ["artpulse"]
    assert shutil.which("artpulse", path=str(Path(sys.executable).parent))


def test_both_images_install_the_same_way() -> None:
    # The slow replay below runs once for both: it is only valid while their steps agree.
    runtime, jobs = (" ".join(_stages(name)[0].values("RUN")) for name in DOCKERFILES)
    assert runtime == jobs
    assert _stages(DOCKERFILES[0])[0].values("COPY") == _stages(DOCKERFILES[1])[0].values("COPY")


@pytest.mark.slow
def _build_context_copy(target: Path) -> Path:
    """The build stage's /src: the COPYed sources as .dockerignore leaves them."""
    kept = context_files(REPO, REPO / ".dockerignore")
    for source, _ in copy_sources(_stages(DOCKERFILES[0])[0]):
        for path in kept:
            if path == source or path.startswith(source.rstrip("/") + "/"):
                (target / path).parent.mkdir(parents=True, exist_ok=True)
                shutil.copy(REPO / path, target / path)
    return target


def test_dockerfile_install_resolves_from_the_index(tmp_path: Path) -> None:
    # Replays the build stage's pip steps in a fresh virtualenv on a copy of the build context
    # (the install as --dry-run: nothing is installed): the pinned build tools, then the
    # project with constraints.txt, wheels only; then builds the project's wheel from it.
    build = " ".join(_stages(DOCKERFILES[0])[0].values("RUN"))
    tools = re.findall(r'"((?:pip|setuptools|wheel)==[^"]+)"', build)
    assert len(tools) == 3, build
    context = _build_context_copy(tmp_path / "src")
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    pip = [str(venv / "bin" / "python"), "-m", "pip", "--disable-pip-version-check", "-q"]
    subprocess.run([*pip, "install", "--only-binary=:all:", *tools], check=True, timeout=300)
    report = tmp_path / "report.json"
    subprocess.run(
        [*pip, "install", "--dry-run", "--ignore-installed", "--only-binary=:all:",
         "--no-build-isolation", "--report", str(report), "-c", "constraints.txt", "."],
        cwd=context,
        check=True,
        timeout=600,
    )  # fmt: skip
    installed = {
        str(canonicalize_name(item["metadata"]["name"])): str(item["metadata"]["version"])
        for item in json.loads(report.read_text())["install"]
    }
    pins = _constraints()
    assert installed.pop("artpulse") == metadata.version("artpulse")
    for name, version in installed.items():
        if name not in BUILD_TOOLS:
            assert pins.get(name) == version, f"{name} {version} resolved, pinned {pins.get(name)}"

    wheels = tmp_path / "wheels"
    subprocess.run(
        [*pip, "wheel", "--no-deps", "--no-build-isolation", "-w", str(wheels), "."],
        cwd=context,
        check=True,
        timeout=300,
    )
    (wheel,) = wheels.glob("artpulse-*.whl")
    with zipfile.ZipFile(wheel) as archive:
        names = set(archive.namelist())
        entry_points = next(n for n in names if n.endswith(".dist-info/entry_points.txt"))
        assert "artpulse = artpulse_jobs.cli:main" in archive.read(entry_points).decode()
    for root in ("runtime", "jobs", "operator"):
        package = context / root / f"artpulse_{root}"
        modules = {p.relative_to(package.parent).as_posix() for p in package.rglob("*.py")}
        assert modules <= names, sorted(modules - names)
