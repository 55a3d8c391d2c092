"""Apply the dev overlay to a real API server and check what the controllers make of it.

The local test server is Kubernetes v1.20 without a kubelet: pods stay Pending, and it serves
neither batch/v1 CronJob, policy/v1 PodDisruptionBudget nor autoscaling/v2
HorizontalPodAutoscaler. Objects of kinds the server does not serve are left out of the apply
and validated offline against current (1.33) schemas instead; on a current cluster (kind in
CI) nothing is left out. Each module-level fixture applies into its own namespace.
"""

from __future__ import annotations

import json
import subprocess
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml
from kopf.testing import KopfRunner
from mlflow.tracking import MlflowClient

from artpulse_contract.constants import ALIAS_CHAMPION, MODEL_NAME, MODEL_URI_ENV
from support.k8s import kubectl, served
from support.kustomize import KUBECTL, Obj, find, render_overlay
from support.operator_cluster import register_versions
from support.polling import wait_for
from support.schemas import validate_objects

pytestmark = pytest.mark.k8s

OFFLINE_ONLY = {
    ("batch/v1", "CronJob"),
    ("policy/v1", "PodDisruptionBudget"),
    ("autoscaling/v2", "HorizontalPodAutoscaler"),
}
VERSION_ANNOTATION = "artpulse.io/model-version"


@dataclass
class Applied:
    """What one apply of the dev overlay put on the server, and what it left out."""

    kubeconfig: str
    namespace: str
    applied: list[Obj]
    offline: list[Obj]

    def kubectl(self, *args: str, stdin: str | None = None) -> str:
        """Run kubectl against the test server; fail with its stderr."""
        return kubectl(self.kubeconfig, *args, stdin=stdin)

    def get(self, kind: str, name: str) -> dict[str, Any]:
        """One live object of the namespace, as JSON."""
        return dict(json.loads(self.kubectl("get", kind, name, "-n", self.namespace, "-o", "json")))

    def items(self, kind: str, *selector: str) -> list[dict[str, Any]]:
        """Live objects of ``kind`` in the namespace (optionally ``-l`` selected)."""
        args = ["get", kind, "-n", self.namespace, "-o", "json"]
        if selector:
            args += ["-l", ",".join(selector)]
        return list(json.loads(self.kubectl(*args))["items"])


def server_side_apply(kubeconfig: str, objects: list[Obj]) -> str:
    """Server-side apply of ``objects`` with this suite's field manager."""
    return kubectl(
        kubeconfig,
        "apply",
        "--server-side",
        "--field-manager=artpulse-tests",
        "-f",
        "-",
        stdin=yaml.safe_dump_all(objects),
    )


def apply_dev_overlay(kubeconfig: str, workdir: Path, namespace: str) -> Applied:
    """Render the dev overlay into ``namespace`` and apply it: CRDs and the Namespace first,
    then every object whose kind the server serves."""
    objects = render_overlay("dev", workdir, namespace=namespace)
    first = [o for o in objects if o["kind"] in ("CustomResourceDefinition", "Namespace")]
    server_side_apply(kubeconfig, first)
    for crd in (o for o in first if o["kind"] == "CustomResourceDefinition"):
        name = crd["metadata"]["name"]
        kubectl(kubeconfig, "wait", "--for=condition=established", f"crd/{name}", "--timeout=60s")
    rest = [o for o in objects if o not in first]
    offline = [o for o in rest if not served(kubeconfig, o["apiVersion"], o["kind"])]
    applied = [o for o in rest if o not in offline]
    server_side_apply(kubeconfig, applied)
    return Applied(kubeconfig, namespace, first + applied, offline)


def delete_namespace(kubeconfig: str, namespace: str) -> None:
    """Delete the namespace's ArtPulseModels (so no operator started later in the session
    adopts them), then start deleting the namespace; controllers finish it in the background."""
    kubectl(kubeconfig, "delete", "artpulsemodels", "--all", "-n", namespace, "--timeout=60s")
    kubectl(kubeconfig, "delete", "namespace", namespace, "--wait=false", "--ignore-not-found")


@pytest.fixture(scope="module")
def dev(kubeconfig: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Applied]:
    """The dev overlay applied to the test server in a fresh namespace."""
    namespace = f"apm-pack-{uuid.uuid4().hex[:8]}"
    applied = apply_dev_overlay(kubeconfig, tmp_path_factory.mktemp("apply"), namespace)
    try:
        yield applied
    finally:
        delete_namespace(kubeconfig, namespace)


def test_kinds_left_out_are_only_the_known_ones_and_validate_offline(dev: Applied) -> None:
    left_out = {(o["apiVersion"], o["kind"]) for o in dev.offline}
    assert left_out <= OFFLINE_ONLY
    report = validate_objects(dev.offline)
    assert report.errors == [] and report.without_schema == []
    assert report.validated == len(dev.offline)


def test_every_applied_object_exists_as_rendered(dev: Applied) -> None:
    for obj in dev.applied:
        kind, name = obj["kind"], obj["metadata"]["name"]
        if obj["metadata"].get("namespace"):
            live = dev.get(kind, name)
        else:
            live = json.loads(dev.kubectl("get", kind, name, "-o", "json"))
        assert live["metadata"].get("labels", {}) == obj["metadata"].get("labels", {}), name
        if kind in ("Deployment", "StatefulSet", "Job"):
            # The server kept the security settings (nothing pruned as unknown on 1.20).
            template = live["spec"]["template"]["spec"]
            expected = obj["spec"]["template"]["spec"]
            assert template["securityContext"] == expected["securityContext"], name
            assert [c["securityContext"] for c in template["containers"]] == [
                c["securityContext"] for c in expected["containers"]
            ], name


def test_serving_deployment_creates_a_replicaset_and_its_pod(dev: Applied) -> None:
    deployment = dev.get("deployment", "artpulse-runtime")
    uid = deployment["metadata"]["uid"]

    def owned_replica_set() -> dict[str, Any] | None:
        for replica_set in dev.items("replicaset"):
            owners = replica_set["metadata"].get("ownerReferences", [])
            ready = replica_set.get("status", {}).get("replicas") == 1
            if any(o["uid"] == uid for o in owners) and ready:
                return replica_set
        return None

    replica_set = wait_for("a ReplicaSet of artpulse-runtime with 1 pod", owned_replica_set, 60)
    pods = dev.items("pod", "app.kubernetes.io/name=artpulse-runtime")
    assert len(pods) == 1
    container = pods[0]["spec"]["containers"][0]
    env = {e["name"]: e.get("value") for e in container["env"]}
    assert env[MODEL_URI_ENV] == f"models:/{MODEL_NAME}/1"
    assert pods[0]["metadata"]["ownerReferences"][0]["name"] == replica_set["metadata"]["name"]


def test_postgres_statefulset_creates_its_pod_and_claim(dev: Applied) -> None:
    wait_for(
        "pod artpulse-postgres-0",
        lambda: dev.items("pod", "app.kubernetes.io/name=artpulse-postgres") or None,
        60,
    )
    claims = {c["metadata"]["name"] for c in dev.items("pvc")}
    assert {"data-artpulse-postgres-0", "artpulse-dataset", "artpulse-mlflow-artifacts"} <= claims


def test_bootstrap_job_creates_its_pod(dev: Applied) -> None:
    pods = wait_for(
        "the bootstrap Job's pod",
        lambda: dev.items("pod", "app.kubernetes.io/component=bootstrap") or None,
        60,
    )
    init = pods[0]["spec"]["initContainers"][0]["command"]
    assert init[:2] == ["artpulse", "generate-images"]


def test_reapplying_changes_nothing(dev: Applied) -> None:
    before = {
        o["metadata"]["name"]: o["metadata"]["generation"]
        for kind in ("deployment", "statefulset")
        for o in dev.items(kind)
    }
    server_side_apply(dev.kubeconfig, dev.applied)
    after = {
        o["metadata"]["name"]: o["metadata"]["generation"]
        for kind in ("deployment", "statefulset")
        for o in dev.items(kind)
    }
    assert after == before
    assert len(before) == 4


def _can(dev: Applied, account: str, verb: str, resource: str) -> bool:
    result = subprocess.run(
        [str(KUBECTL), "--kubeconfig", dev.kubeconfig, "auth", "can-i", verb, resource,
         "-n", dev.namespace, f"--as=system:serviceaccount:{dev.namespace}:{account}"],
        capture_output=True,
        text=True,
        check=False,
    )  # fmt: skip
    return result.stdout.strip() == "yes"


def test_service_accounts_have_least_privilege(dev: Applied) -> None:
    assert _can(dev, "artpulse-operator", "patch", "deployments.apps")
    assert _can(dev, "artpulse-operator", "watch", "artpulsemodels.artpulse.io")
    assert not _can(dev, "artpulse-operator", "get", "secrets")
    assert not _can(dev, "artpulse-operator", "delete", "deployments.apps")
    for account in ("artpulse-runtime", "artpulse-mlflow", "artpulse-jobs", "artpulse-postgres"):
        assert not _can(dev, account, "get", "pods"), account


@pytest.mark.slow
def test_champion_alias_move_rolls_the_applied_deployment(
    kubeconfig: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # End to end on the real manifests: the dev overlay applied, the operator run in-process
    # (as the operator Deployment runs it: one namespace), a real SQLite registry with two
    # versions. The one change to the manifests: the resource polls every second instead of
    # every 30, so the test does not wait for the production interval.
    namespace = f"apm-e2e-{uuid.uuid4().hex[:8]}"
    dev = apply_dev_overlay(kubeconfig, tmp_path / "render", namespace)
    registry_uri = register_versions(tmp_path / "registry", 2)
    registry = MlflowClient(tracking_uri=registry_uri, registry_uri=registry_uri)
    registry.set_registered_model_alias(MODEL_NAME, ALIAS_CHAMPION, "1")
    monkeypatch.setenv("MLFLOW_TRACKING_URI", registry_uri)
    resource = find(dev.applied, "ArtPulseModel", MODEL_NAME)["metadata"]["name"]
    dev.kubectl(
        "patch", "artpulsemodel", resource, "-n", namespace, "--type=merge",
        "-p", json.dumps({"spec": {"pollIntervalSeconds": 1}}),
    )  # fmt: skip

    def pinned() -> tuple[str | None, str | None]:
        template = dev.get("deployment", "artpulse-runtime")["spec"]["template"]
        env = {e["name"]: e.get("value") for e in template["spec"]["containers"][0]["env"]}
        return env.get(MODEL_URI_ENV), template["metadata"].get("annotations", {}).get(
            VERSION_ANNOTATION
        )

    def replica_sets() -> dict[str, str | None]:
        return {
            rs["metadata"]["name"]: rs["spec"]["template"]["metadata"]
            .get("annotations", {})
            .get(VERSION_ANNOTATION)
            for rs in dev.items("replicaset", "app.kubernetes.io/name=artpulse-runtime")
        }

    args = ["run", "--standalone", "--namespace", namespace, "-m", "artpulse_operator"]
    try:
        with KopfRunner(args, timeout=90) as runner:
            v1 = (f"models:/{MODEL_NAME}/1", "1")
            wait_for("version 1 pinned", lambda: pinned() == v1 or None, 60)
            wait_for("a ReplicaSet for version 1", lambda: "1" in replica_sets().values(), 60)
            before = replica_sets()

            registry.set_registered_model_alias(MODEL_NAME, ALIAS_CHAMPION, "2")
            v2 = (f"models:/{MODEL_NAME}/2", "2")
            wait_for("version 2 pinned", lambda: pinned() == v2 or None, 60)
            new = wait_for(
                "a new ReplicaSet for version 2",
                lambda: {n: v for n, v in replica_sets().items() if n not in before} or None,
                60,
            )
            assert list(new.values()) == ["2"]
            # Release the resource while the operator runs, so its finalizer is removed.
            dev.kubectl("delete", "artpulsemodel", resource, "-n", namespace, "--timeout=60s")
        assert runner.exception is None, runner.stdout
    finally:
        delete_namespace(kubeconfig, namespace)
