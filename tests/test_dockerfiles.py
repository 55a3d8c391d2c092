"""The two Dockerfiles: lint-clean, multi-stage, pinned, non-root, sharing their dependency
layers, and the commands and health check they set work.

``make test`` runs without a Docker engine, so the images are checked by reading them, by
applying ``.dockerignore`` to the checkout and by running what they run (the manifests'
commands, the health check) in this venv; ``make e2e`` builds and runs them on a real node.
Their dependency sets are checked in ``test_dependency_sets.py``.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from importlib import import_module
from pathlib import Path

import click
import pytest

from artpulse_contract.settings import ArtPulseSettings
from artpulse_jobs.serving.server import SERVER_MODULE, server_on_free_ports
from support.dockerfiles import Stage, context_files, copy_sources, parse_dockerfile, stage_named
from support.environment import free_port
from support.kustomize import OVERLAYS, REPO, Obj, containers, render_overlay, workloads

DOCKERFILES = ("Dockerfile.runtime", "Dockerfile.jobs")
HADOLINT = Path(sys.executable).parent / "hadolint"
PINNED_BASE = re.compile(r"^python:3\.11\.\d+-slim(-[a-z]+)?$")
COMPILERS = re.compile(r"\b(gcc|g\+\+|clang|build-essential|make|cc|python3-dev|libpq-dev)\b")
OCI_LABELS = ("title", "description", "version", "revision", "source", "licenses")
NON_ROOT_UID = 10001
SERVING_DEPS = "serving-deps"
"""The stage holding the core + ``serving`` venv that both images start from."""


def _stages(name: str) -> list[Stage]:
    return parse_dockerfile(REPO / name)


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
    assert len(stages) >= 2, "multi-stage: build stages and a slim final stage"
    names = {stage.name for stage in stages}
    for stage in stages:
        if stage.base not in names:
            assert PINNED_BASE.match(stage.base), (
                f"base image not pinned to a version: {stage.base}"
            )
    final = stages[-1]
    assert final.values("USER") == [f"{NON_ROOT_UID}:{NON_ROOT_UID}"]
    assert not any(COMPILERS.search(run) for run in final.values("RUN")), final.values("RUN")
    assert not any(
        source.endswith(("pyproject.toml", "constraints.txt")) for source, _ in copy_sources(final)
    ), "the final stage copies the venv, not the sources"
    assert any(f"--from={SERVING_DEPS}" in value for value in final.values("COPY"))
    labels = " ".join(final.values("LABEL"))
    for label in OCI_LABELS:
        assert f"org.opencontainers.image.{label}=" in labels, label
    installs = " ".join(stage_named(stages, SERVING_DEPS).values("RUN"))
    assert "-c constraints.txt -r serving.txt" in installs
    assert "--only-binary=:all:" in installs


@pytest.mark.parametrize("dockerfile", DOCKERFILES)
def test_builds_with_the_legacy_builder_and_an_optional_package_index(dockerfile: str) -> None:
    # A `# syntax=` line makes BuildKit fetch a frontend image; the legacy builder ignores it.
    text = (REPO / dockerfile).read_text()
    assert not re.search(r"^#\s*syntax\s*=", text, re.MULTILINE | re.IGNORECASE)
    args = stage_named(_stages(dockerfile), SERVING_DEPS).values("ARG")
    assert {"PIP_INDEX_URL", "PIP_EXTRA_INDEX_URL", "PIP_TRUSTED_HOST"} <= set(args)
    # Nothing machine-specific: no index, host or proxy address in any instruction.
    values = [i.value for stage in _stages(dockerfile) for i in stage.instructions
              if i.keyword != "LABEL"]  # fmt: skip
    assert not [value for value in values if re.search(r"://(?!127\.0\.0\.1[:/])", value)]


def _instructions(stage: Stage) -> list[tuple[str, str]]:
    return [(i.keyword, i.value) for i in stage.instructions]


def test_images_share_their_dependency_stages_and_first_layers() -> None:
    # Same instructions on the same base: Docker's cache builds them once for both images, and
    # the final images share the core + serving dependency layer.
    runtime, jobs = (_stages(name) for name in DOCKERFILES)
    for name in ("requirements", SERVING_DEPS, "app"):
        assert _instructions(stage_named(runtime, name)) == _instructions(stage_named(jobs, name))
    shared = f"--from={SERVING_DEPS} /opt/artpulse /opt/artpulse"
    prefixes = []
    for stages in (runtime, jobs):
        final = _instructions(stages[-1])
        index = final.index(("COPY", shared))
        prefixes.append((stages[-1].base, final[: index + 1]))
    assert prefixes[0] == prefixes[1]
    assert "-r jobs.txt" in " ".join(stage_named(jobs, "jobs-deps").values("RUN"))
    assert any("--from=jobs-deps" in value for value in jobs[-1].values("COPY"))


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


def _healthcheck(port: int) -> subprocess.CompletedProcess[str]:
    """Run Dockerfile.runtime's HEALTHCHECK command with ``MLSERVER_HTTP_PORT=port``."""
    (value,) = _stages("Dockerfile.runtime")[-1].values("HEALTHCHECK")
    command = json.loads(value[value.index("CMD") + 3 :])
    assert command[0] == "python"
    environment = {**os.environ, "MLSERVER_HTTP_PORT": str(port)}
    return subprocess.run(
        [sys.executable, *command[1:]],
        env=environment,
        capture_output=True,
        text=True,
        check=False,
        timeout=30,
    )


@pytest.mark.slow
def test_the_health_check_probes_the_port_the_server_listens_on(
    settings: ArtPulseSettings,
) -> None:
    # A real MLServer on a free port (no model needed: liveness only); the check follows
    # MLSERVER_HTTP_PORT, and fails where nothing listens.
    with server_on_free_ports(settings, wait_for_model=False) as server:
        port = int(server.http_url.rsplit(":", 1)[1])
        assert _healthcheck(port).returncode == 0, _healthcheck(port).stderr
        assert _healthcheck(free_port()).returncode != 0
