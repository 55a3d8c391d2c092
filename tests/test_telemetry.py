"""MLflow's usage telemetry is off in every process ArtPulse starts, and a user can turn it on.

MLflow itself stays quiet under pytest and on CI (it looks for PYTEST_CURRENT_TEST, CI, ...),
which would hide a process that reports: the command test runs ``artpulse`` in a subprocess
with those markers removed from its environment.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from mlflow.telemetry.utils import _is_ci_env_or_testing

from artpulse_contract.settings import ArtPulseSettings
from artpulse_jobs.serving.server import server_environment
from artpulse_jobs.telemetry import TELEMETRY_DEFAULTS, telemetry_off_by_default
from support.dockerfiles import parse_dockerfile
from support.kustomize import COMPONENTS, OVERLAYS, REPO, Obj, containers, render_overlay, workloads

SWITCH = "MLFLOW_DISABLE_TELEMETRY"
# Variables that make MLflow (or this test's subprocess) skip telemetry on its own.
QUIETING = ("DO_NOT_TRACK", SWITCH, "PYTEST_CURRENT_TEST", "CI", "GITHUB_ACTIONS")

# Runs the real `artpulse` entry point in-process, then reports what MLflow decided.
REPORT = """
import sys
from artpulse_jobs.cli import main
try:
    main(sys.argv[1:], prog_name="artpulse")
except SystemExit as stop:
    assert not stop.code, stop.code
from mlflow.telemetry import get_telemetry_client
from mlflow.telemetry.utils import _is_ci_env_or_testing
assert not _is_ci_env_or_testing(), "the environment still marks a CI or test run"
print("telemetry client:", get_telemetry_client())
"""


def _outside_ci_environment(state_dir: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in QUIETING and not k.startswith("CI_")}
    env["ARTPULSE_STATE_DIR"] = str(state_dir)
    env.pop("MLFLOW_TRACKING_URI", None)
    return env


def test_the_artpulse_command_starts_no_telemetry_client(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-c", REPORT, "models"],
        env=_outside_ci_environment(tmp_path / "state"),
        capture_output=True,
        text=True,
        check=False,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert "telemetry client: None" in result.stdout, result.stdout


def test_the_default_never_overrides_a_users_choice() -> None:
    environ = {SWITCH: "false"}
    telemetry_off_by_default(environ)
    assert environ == {SWITCH: "false"}
    empty: dict[str, str] = {}
    telemetry_off_by_default(empty)
    assert empty == {SWITCH: "true"}


def test_mlserver_processes_get_telemetry_off_unless_the_user_turned_it_on(
    settings: ArtPulseSettings,
) -> None:
    assert server_environment(settings, base={})[SWITCH] == "true"
    assert server_environment(settings, base={SWITCH: "false"})[SWITCH] == "false"


@pytest.mark.parametrize("dockerfile", ["Dockerfile.runtime", "Dockerfile.jobs"])
def test_images_turn_telemetry_off(dockerfile: str) -> None:
    final = parse_dockerfile(REPO / dockerfile)[-1]
    env = " ".join(final.values("ENV")).split()
    assert f"{SWITCH}=true" in env


def _config_maps(objects: list[Obj]) -> dict[str, dict[str, str]]:
    return {o["metadata"]["name"]: o.get("data", {}) for o in objects if o["kind"] == "ConfigMap"}


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_every_artpulse_container_of_the_manifests_has_telemetry_off(
    overlay: str, tmp_path: Path
) -> None:
    objects = render_overlay(overlay, tmp_path, components=COMPONENTS)
    config_maps = _config_maps(objects)
    checked = 0
    for workload, template in workloads(objects):
        for container in containers(template["spec"]):
            if "/artpulse-" not in container["image"]:
                continue
            env: dict[str, str | None] = {}
            for source in container.get("envFrom", []):
                env.update(config_maps.get(source.get("configMapRef", {}).get("name"), {}))
            env.update({v["name"]: v.get("value") for v in container.get("env", [])})
            where = f"{workload['kind']}/{workload['metadata']['name']}/{container['name']}"
            assert {k: env.get(k) for k in TELEMETRY_DEFAULTS} == dict(TELEMETRY_DEFAULTS), where
            checked += 1
    assert checked >= 6


def test_this_test_process_would_hide_telemetry_on_its_own() -> None:
    # Why the command test above scrubs its subprocess's environment.
    assert _is_ci_env_or_testing()
