"""kubectl against a live API server: commands, discovery, and the dev overlay applied to it."""

from __future__ import annotations

import copy
import json
import subprocess
from typing import Any

import yaml

from support.kustomize import KUBECTL, Obj

CRD_KIND = "CustomResourceDefinition"


def kubectl(kubeconfig: str, *args: str, stdin: str | None = None, timeout: float = 120) -> str:
    """Run the pinned kubectl against ``kubeconfig``; raise with stderr on failure."""
    result = subprocess.run(
        [str(KUBECTL), "--kubeconfig", kubeconfig, *args],
        input=stdin,
        capture_output=True,
        text=True,
        check=False,
        timeout=timeout,
    )
    if result.returncode != 0:
        raise AssertionError(f"kubectl {' '.join(args)} failed: {result.stderr.strip()}")
    return result.stdout


def served(kubeconfig: str, api_version: str, kind: str) -> bool:
    """Whether the server serves ``kind`` at ``api_version`` (API discovery)."""
    path = "/api/v1" if api_version == "v1" else f"/apis/{api_version}"
    result = subprocess.run(
        [str(KUBECTL), "--kubeconfig", kubeconfig, "get", "--raw", path],
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )
    if result.returncode != 0:
        return False
    return any(r["kind"] == kind for r in json.loads(result.stdout)["resources"])


def split_served(kubeconfig: str, objects: list[Obj]) -> tuple[list[Obj], list[Obj]]:
    """``(served, left_out)``: the objects whose kind the server serves, and the others.

    Kinds defined by a CRD among ``objects`` count as served (the CRD is applied with them).
    """
    defined = {
        (f"{crd['spec']['group']}/{version['name']}", crd["spec"]["names"]["kind"])
        for crd in objects
        if crd["kind"] == CRD_KIND
        for version in crd["spec"]["versions"]
    }
    verdicts: dict[tuple[str, str], bool] = {}
    kept, left_out = [], []
    for obj in objects:
        key = (obj["apiVersion"], obj["kind"])
        if key not in verdicts:
            verdicts[key] = key in defined or served(kubeconfig, *key)
        (kept if verdicts[key] else left_out).append(obj)
    return kept, left_out


def as_yaml(objects: list[Obj]) -> str:
    """A multi-document YAML stream of ``objects``."""
    return yaml.safe_dump_all(objects, sort_keys=False)


def job_from_cronjob(cronjob: Obj, name: str) -> Obj:
    """A ``batch/v1`` Job made exactly from a CronJob's ``jobTemplate`` (what the CronJob
    controller creates at a scheduled time), named ``name``."""
    template = copy.deepcopy(cronjob["spec"]["jobTemplate"])
    metadata: dict[str, Any] = {
        "name": name,
        "labels": dict(template.get("metadata", {}).get("labels", {})),
    }
    if "namespace" in cronjob["metadata"]:
        metadata["namespace"] = cronjob["metadata"]["namespace"]
    return {"apiVersion": "batch/v1", "kind": "Job", "metadata": metadata, "spec": template["spec"]}
