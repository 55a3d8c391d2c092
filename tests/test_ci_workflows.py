"""The GitHub workflows: least privilege, nothing skipped silently, immutable image tags, and
every file, make target and tool version they name exists here."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from support.kustomize import KUBECTL, REPO

WORKFLOWS = REPO / ".github" / "workflows"


def _load(name: str) -> dict[str, Any]:
    document = yaml.safe_load((WORKFLOWS / name).read_text())
    # YAML 1.1 reads the bare key `on` as True.
    document["on"] = document.pop(True, document.get("on"))
    return document


def _run_lines(workflow: dict[str, Any]) -> str:
    return "\n".join(
        step.get("run", "") for job in workflow["jobs"].values() for step in job["steps"]
    )


@pytest.mark.parametrize("name", ["ci.yml", "images.yml", "release.yml"])
def test_default_token_permissions_are_read_only(name: str) -> None:
    workflow = _load(name)
    assert workflow["permissions"] == {"contents": "read"}
    for job_name, job in workflow["jobs"].items():
        granted = job.get("permissions", {})
        writes = {scope for scope, level in granted.items() if level == "write"}
        allowed = {
            "images.yml": {"packages", "id-token", "attestations"},
            "release.yml": {"contents", "pull-requests"},
        }.get(name, set())
        assert writes <= allowed, f"{name}:{job_name} asks for {sorted(writes - allowed)}"
    text = (WORKFLOWS / name).read_text()
    assert not re.search(r"secrets\.(?!GITHUB_TOKEN\b)", text), "only the job token is used"


def test_ci_requires_the_cluster_and_database_tests() -> None:
    workflow = _load("ci.yml")
    test_job = workflow["jobs"]["test"]
    assert test_job["env"] == {"REQUIRE_K8S": "1", "REQUIRE_POSTGRES": "1"}
    uses = [step.get("uses", "") for step in test_job["steps"]]
    assert any(u.startswith("helm/kind-action@") for u in uses)
    runs = _run_lines(workflow)
    assert "postgresql-15" in runs
    makefile = (REPO / "Makefile").read_text()
    for target in re.findall(r"\bmake (\w+)", runs):
        assert re.search(rf"^{target}:", makefile, re.MULTILINE), f"no make target {target}"
    for path in re.findall(r"tests/[\w/]+\.py", runs):
        assert (REPO / path).is_file(), path


def test_images_are_built_from_existing_dockerfiles_with_immutable_tags() -> None:
    workflow = _load("images.yml")
    job = workflow["jobs"]["build"]
    for image in job["strategy"]["matrix"]["image"]:
        assert (REPO / f"Dockerfile.{image}").is_file()
    meta = next(s for s in job["steps"] if s.get("id") == "meta")["with"]
    assert meta["flavor"] == "latest=false"
    assert "type=sha,format=long" in meta["tags"]
    assert "latest" not in meta["tags"]


def test_release_bumps_the_prod_overlay_with_the_bundled_kustomize_version() -> None:
    workflow = _load("release.yml")
    runs = _run_lines(workflow)
    assert "cd kustomize/overlays/prod" in runs
    assert 'kustomize edit set image "artpulse-$image=' in runs
    prod = yaml.safe_load((REPO / "kustomize/overlays/prod/kustomization.yaml").read_text())
    assert {"artpulse-runtime", "artpulse-jobs"} <= {entry["name"] for entry in prod["images"]}
    client = subprocess.run(
        [str(KUBECTL), "version", "--client"], capture_output=True, text=True, check=True
    ).stdout
    bundled = re.search(r"Kustomize Version: v([\d.]+)", client)
    assert bundled is not None
    assert workflow["env"]["KUSTOMIZE_VERSION"] == bundled.group(1)


def test_deployment_doc_lists_every_permission_the_workflows_use() -> None:
    doc = (REPO / "docs" / "deployment.md").read_text()
    for name in ("ci.yml", "images.yml", "release.yml"):
        for job in _load(name)["jobs"].values():
            for scope in job.get("permissions", {}):
                assert f"`{scope}`" in doc, f"docs/deployment.md does not explain {scope}"
    assert Path(REPO / "kustomize/overlays/prod/postgres.env.example").is_file()


def test_the_ci_script_runs_the_required_suite_then_the_e2e_and_cleans_up() -> None:
    script = (REPO / ".ci" / "run").read_text()
    suite = script.index("REQUIRE_K8S=1 REQUIRE_POSTGRES=1 make test")
    e2e = script.index('phase "make e2e" make e2e')
    assert suite < e2e
    assert "stand-in-images" in script and 'local-node" install' in script
    assert re.search(r"^trap cleanup EXIT$", script, re.MULTILINE)
    cleanup = script[script.index("cleanup() {") : script.index("trap cleanup EXIT")]
    assert 'local-node" stop' in cleanup and 'local-cluster" stop' in cleanup
    makefile = (REPO / "Makefile").read_text()
    for target in set(re.findall(r"\bmake (\w+)", script)):
        assert re.search(rf"^{target}:", makefile, re.MULTILINE), f"no make target {target}"
