"""Render the kustomize overlays with the venv's pinned kubectl and walk the rendered objects."""

from __future__ import annotations

import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import yaml

REPO = Path(__file__).resolve().parents[2]
KUSTOMIZE_DIR = REPO / "kustomize"
MANIFESTS_DIR = REPO / "manifests"
KUBECTL = Path(sys.executable).parent / "kubectl"
OVERLAYS = ("dev", "prod")
COMPONENTS = ("ingress", "servicemonitor", "external-database", "registry-webhook")
PROD_SECRET_ENV = "postgres.env"
PROD_API_KEYS = "api-keys"
WEBHOOK_SECRET_ENV = "webhook.env"

Obj = dict[str, Any]

POD_TEMPLATE_KINDS = ("Deployment", "StatefulSet", "DaemonSet", "ReplicaSet", "Job")


class RenderError(RuntimeError):
    """``kubectl kustomize`` failed; the message carries its stderr."""


def render_dir(path: Path) -> list[Obj]:
    """Render a kustomization folder and return its objects (empty documents dropped)."""
    result = subprocess.run(
        [str(KUBECTL), "kustomize", str(path)],
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )
    if result.returncode != 0:
        raise RenderError(f"kubectl kustomize {path} failed: {result.stderr.strip()}")
    return [doc for doc in yaml.safe_load_all(result.stdout) if doc]


def copy_tree(workdir: Path, *, with_prod_secret: bool = True) -> Path:
    """Copy ``kustomize/`` and ``manifests/`` into ``workdir`` and return the copied kustomize dir.

    The prod overlay and the registry-webhook component read their secrets from uncommitted
    files; the copy gets them made from the committed examples (unless ``with_prod_secret`` is
    false), so rendering never writes into the checkout.
    """
    target = workdir / "kustomize"
    ignored = shutil.ignore_patterns(PROD_SECRET_ENV, PROD_API_KEYS, WEBHOOK_SECRET_ENV)
    shutil.copytree(KUSTOMIZE_DIR, target, ignore=ignored)
    shutil.copytree(MANIFESTS_DIR, workdir / "manifests")
    if with_prod_secret:
        for folder, name in (
            (target / "overlays" / "prod", PROD_SECRET_ENV),
            (target / "overlays" / "prod", PROD_API_KEYS),
            (target / "components" / "registry-webhook", WEBHOOK_SECRET_ENV),
        ):
            shutil.copyfile(folder / f"{name}.example", folder / name)
    return target


def render_overlay(
    name: str,
    workdir: Path,
    components: tuple[str, ...] = (),
    namespace: str | None = None,
) -> list[Obj]:
    """Render overlay ``name`` (from a copy in ``workdir``), optionally with extra components
    or moved to another namespace (kustomize renames the Namespace object too)."""
    tree = copy_tree(workdir)
    if not components and namespace is None:
        return render_dir(tree / "overlays" / name)
    composed = workdir / "composed"
    composed.mkdir()
    document: dict[str, Any] = {
        "apiVersion": "kustomize.config.k8s.io/v1beta1",
        "kind": "Kustomization",
        "resources": [f"../kustomize/overlays/{name}"],
    }
    if components:
        document["components"] = [f"../kustomize/components/{c}" for c in components]
    if namespace is not None:
        document["namespace"] = namespace
    (composed / "kustomization.yaml").write_text(yaml.safe_dump(document))
    return render_dir(composed)


def find(objects: list[Obj], kind: str, name: str) -> Obj:
    """The one object of ``kind`` named ``name``; ``KeyError`` naming both when absent."""
    for obj in objects:
        if obj["kind"] == kind and obj["metadata"]["name"] == name:
            return obj
    raise KeyError(f"no {kind} named {name!r} among the rendered objects")


def pod_template(obj: Obj) -> Obj | None:
    """The pod template (``metadata`` + ``spec``) of a workload, or None for other kinds."""
    if obj["kind"] == "CronJob":
        return dict(obj["spec"]["jobTemplate"]["spec"]["template"])
    if obj["kind"] in POD_TEMPLATE_KINDS:
        return dict(obj["spec"]["template"])
    if obj["kind"] == "Pod":
        return obj
    return None


def workloads(objects: list[Obj]) -> Iterator[tuple[Obj, Obj]]:
    """Every (workload, pod template) pair among the objects."""
    for obj in objects:
        template = pod_template(obj)
        if template is not None:
            yield obj, template


def containers(pod_spec: Obj) -> list[Obj]:
    """Init and regular containers of a pod spec."""
    return [*pod_spec.get("initContainers", []), *pod_spec.get("containers", [])]


def label_selector_matches(selector: Obj, labels: dict[str, str]) -> bool:
    """Whether a Kubernetes label selector (matchLabels / matchExpressions) selects ``labels``."""
    for key, value in (selector.get("matchLabels") or {}).items():
        if labels.get(key) != value:
            return False
    for expression in selector.get("matchExpressions") or []:
        key, operator, values = expression["key"], expression["operator"], expression.get("values")
        present = key in labels
        if operator == "In" and (not present or labels[key] not in values):
            return False
        if operator == "NotIn" and present and labels[key] in values:
            return False
        if operator == "Exists" and not present:
            return False
        if operator == "DoesNotExist" and present:
            return False
    return True
