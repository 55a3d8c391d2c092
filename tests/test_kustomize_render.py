"""Every overlay (and every component) renders with the pinned kubectl and validates offline.

Validation is strict against Kubernetes 1.33 schemas (unknown fields are errors), and the
ArtPulseModel resource is validated against the CRD rendered with it. Kinds the local v1.20 API
server does not serve (batch/v1 CronJob, policy/v1 PDB, autoscaling/v2 HPA) are covered here.
"""

from __future__ import annotations

import base64
import copy
import subprocess
from pathlib import Path

import kubernetes_validate
import pytest
import yaml

from artpulse_contract.constants import MODEL_NAME
from artpulse_runtime.runtime_settings import decode_processes_for
from artpulse_runtime.server.auth import load_key_ring
from support.kustomize import (
    COMPONENTS,
    KUSTOMIZE_DIR,
    OVERLAYS,
    REPO,
    Obj,
    RenderError,
    containers,
    copy_tree,
    find,
    render_dir,
    render_overlay,
    workloads,
)
from support.schemas import KUBERNETES_VERSION, validate_objects

DEPRECATED_FIELDS = ("patchesStrategicMerge", "commonLabels", "patchesJson6902", "bases", "vars")


@pytest.fixture(scope="module")
def rendered(tmp_path_factory: pytest.TempPathFactory) -> dict[str, list[Obj]]:
    """Both overlays, rendered once for the module."""
    return {
        name: render_overlay(name, tmp_path_factory.mktemp(f"render-{name}")) for name in OVERLAYS
    }


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_overlay_validates_strictly_against_current_schemas(
    rendered: dict[str, list[Obj]], overlay: str
) -> None:
    objects = rendered[overlay]
    # The supported floor and the newest schemas kubernetes-validate ships (catches removals).
    for version in (KUBERNETES_VERSION, kubernetes_validate.latest_version()):
        report = validate_objects(objects, version)
        assert report.errors == [], version
        assert report.without_schema == [], version
        assert report.validated == len(objects)
    kinds = {obj["kind"] for obj in objects}
    assert {"CustomResourceDefinition", "ArtPulseModel", "CronJob", "StatefulSet"} <= kinds


def test_validation_rejects_a_broken_object(rendered: dict[str, list[Obj]]) -> None:
    # The check above is only worth something if a wrong type or an unknown field fails it.
    runtime = find(rendered["dev"], "Deployment", "artpulse-runtime")
    wrong_type = copy.deepcopy(runtime)
    wrong_type["spec"]["replicas"] = "two"
    unknown_field = copy.deepcopy(runtime)
    unknown_field["spec"]["template"]["spec"]["containers"][0]["imagePullPolicey"] = "Always"
    model = copy.deepcopy(find(rendered["dev"], "ArtPulseModel", MODEL_NAME))
    model["spec"]["pollIntervalSeconds"] = "soon"
    crd = find(rendered["dev"], "CustomResourceDefinition", "artpulsemodels.artpulse.io")
    report = validate_objects([wrong_type, unknown_field, model, crd])
    assert len(report.errors) == 3
    joined = "\n".join(report.errors)
    assert "replicas" in joined
    assert "imagePullPolicey" in joined
    assert "pollIntervalSeconds" in joined


def test_dev_overlay_contents(rendered: dict[str, list[Obj]]) -> None:
    objects = rendered["dev"]
    runtime = find(objects, "Deployment", "artpulse-runtime")
    assert runtime["spec"]["replicas"] == 1
    bootstrap = find(objects, "Job", "artpulse-bootstrap")
    commands = [c["command"][:2] for c in bootstrap["spec"]["template"]["spec"]["initContainers"]]
    commands += [c["command"][:2] for c in bootstrap["spec"]["template"]["spec"]["containers"]]
    assert commands == [["artpulse", "generate-images"], ["artpulse", "train"]]
    secret = next(o for o in objects if o["kind"] == "Secret")
    assert set(secret["data"]) == {"POSTGRES_USER", "POSTGRES_PASSWORD"}
    assert not [o for o in objects if o["kind"] in ("NetworkPolicy", "HorizontalPodAutoscaler")]
    container = runtime["spec"]["template"]["spec"]["containers"][0]
    assert "ARTPULSE_API_KEYS_FILE" not in {v["name"] for v in container["env"]}, "dev: no keys"


def test_prod_overlay_contents(rendered: dict[str, list[Obj]]) -> None:
    objects = rendered["prod"]
    runtime = find(objects, "Deployment", "artpulse-runtime")
    assert runtime["spec"]["replicas"] == 3
    spread = runtime["spec"]["template"]["spec"]["topologySpreadConstraints"]
    assert {c["topologyKey"] for c in spread} == {
        "kubernetes.io/hostname",
        "topology.kubernetes.io/zone",
    }
    hpa = find(objects, "HorizontalPodAutoscaler", "artpulse-runtime")
    assert hpa["apiVersion"] == "autoscaling/v2"
    assert hpa["spec"]["scaleTargetRef"]["name"] == "artpulse-runtime"
    assert hpa["spec"]["minReplicas"] == runtime["spec"]["replicas"]
    pdb = find(objects, "PodDisruptionBudget", "artpulse-runtime")
    assert pdb["apiVersion"] == "policy/v1"
    assert pdb["spec"]["minAvailable"] < runtime["spec"]["replicas"]
    policies = [o for o in objects if o["kind"] == "NetworkPolicy"]
    deny = find(objects, "NetworkPolicy", "artpulse-default-deny")
    assert deny["spec"] == {"podSelector": {}, "policyTypes": ["Ingress", "Egress"]}
    assert len(policies) >= 6
    assert not [o for o in objects if o["kind"] == "Job"], "the bootstrap Job is dev-only"


def cores(quantity: str) -> float:
    """A Kubernetes CPU quantity ("2", "500m") in cores."""
    return int(quantity[:-1]) / 1000 if quantity.endswith("m") else float(quantity)


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_decode_processes_match_the_runtime_cpu_limit(
    rendered: dict[str, list[Obj]], overlay: str
) -> None:
    """README, sizing: the decode workers the runtime would choose for the cores of the limit,
    and in prod (the HPA's overlay) a request equal to the limit, so CPU utilization is the
    share of the pod's cores."""
    objects = rendered[overlay]
    spec = find(objects, "Deployment", "artpulse-runtime")["spec"]["template"]["spec"]
    runtime = next(c for c in spec["containers"] if c["name"] == "runtime")
    env = {item["name"]: item.get("value") for item in runtime["env"]}
    resources = runtime["resources"]
    assert env["MLSERVER_PARALLEL_WORKERS"] == "0"
    limit = cores(resources["limits"]["cpu"])
    assert limit == int(limit)
    assert int(env["ARTPULSE_DECODE_PROCESSES"]) == decode_processes_for(int(limit))
    if overlay == "prod":
        assert cores(resources["requests"]["cpu"]) == cores(resources["limits"]["cpu"])
        hpa = find(objects, "HorizontalPodAutoscaler", "artpulse-runtime")
        (metric,) = hpa["spec"]["metrics"]
        assert metric["resource"]["name"] == "cpu"
        assert metric["resource"]["target"]["averageUtilization"] <= 80


def test_prod_requires_api_keys_from_a_mounted_secret(
    rendered: dict[str, list[Obj]], tmp_path: Path
) -> None:
    objects = rendered["prod"]
    spec = find(objects, "Deployment", "artpulse-runtime")["spec"]["template"]["spec"]
    container = next(c for c in spec["containers"] if c["name"] == "runtime")
    keys_file = Path(
        next(v["value"] for v in container["env"] if v["name"] == "ARTPULSE_API_KEYS_FILE")
    )
    mount = next(m for m in container["volumeMounts"] if keys_file.parent == Path(m["mountPath"]))
    assert mount["readOnly"] is True
    volume = next(v for v in spec["volumes"] if v["name"] == mount["name"])
    secret = find(objects, "Secret", volume["secret"]["secretName"])
    assert secret["metadata"]["name"].startswith("artpulse-api-keys-")  # hashed: a change rolls
    digests = base64.b64decode(secret["data"][keys_file.name])
    holder = tmp_path / "api-keys"
    holder.write_bytes(digests)
    assert load_key_ring(holder).digests  # the example parses as the server reads it


def test_ingress_routes_inference_and_readiness_only(tmp_path: Path) -> None:
    objects = render_overlay("prod", tmp_path, ("ingress",))
    ingress = find(objects, "Ingress", "artpulse-runtime")
    paths = {
        (p["path"], p["pathType"]) for r in ingress["spec"]["rules"] for p in r["http"]["paths"]
    }
    assert paths == {
        (f"/v2/models/{MODEL_NAME}/infer", "Exact"),
        (f"/v2/models/{MODEL_NAME}/ready", "Exact"),
    }


def test_prod_credentials_come_from_an_uncommitted_env_file(tmp_path: Path) -> None:
    tree = copy_tree(tmp_path, with_prod_secret=False)
    with pytest.raises(RenderError, match=r"postgres\.env"):
        render_dir(tree / "overlays" / "prod")
    (tree / "overlays" / "prod" / "postgres.env").write_text(
        "POSTGRES_USER=a\nPOSTGRES_PASSWORD=b\n"
    )
    with pytest.raises(RenderError, match=r"api-keys"):
        render_dir(tree / "overlays" / "prod")
    for secret_file in (
        "kustomize/overlays/prod/postgres.env",
        "kustomize/overlays/prod/api-keys",
        "kustomize/components/registry-webhook/webhook.env",
    ):
        ignored = subprocess.run(["git", "check-ignore", "-q", secret_file], cwd=REPO, check=False)
        assert ignored.returncode == 0, f"{secret_file} must be git-ignored"
    example = (KUSTOMIZE_DIR / "overlays" / "prod" / "postgres.env.example").read_text()
    assert "change-me" in example


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_every_component_renders_and_validates(tmp_path: Path, overlay: str) -> None:
    objects = render_overlay(overlay, tmp_path, COMPONENTS)
    report = validate_objects(objects)
    assert report.errors == []
    # The Prometheus Operator's CRD is not part of this repository.
    assert report.without_schema == ["monitoring.coreos.com/v1 ServiceMonitor/artpulse-runtime"]
    operator = find(objects, "Deployment", "artpulse-operator")["spec"]["template"]["spec"]
    env = {v["name"]: v for v in operator["containers"][0]["env"]}
    assert env["ARTPULSE_OPERATOR_WEBHOOK_PORT"]["value"] == "9443"
    secret = env["ARTPULSE_OPERATOR_WEBHOOK_SECRET"]["valueFrom"]["secretKeyRef"]["name"]
    assert secret == "artpulse-webhook"
    assert find(objects, "Secret", secret)["data"]["ARTPULSE_OPERATOR_WEBHOOK_SECRET"]
    # The patch added to the operator's environment without replacing what it had.
    assert operator["containers"][0]["envFrom"][0]["configMapRef"]["name"].startswith(
        "artpulse-config-"
    )
    assert "MLFLOW_WEBHOOK_ALLOW_PRIVATE_IPS" in {
        v["name"]
        for v in find(objects, "Deployment", "artpulse-mlflow")["spec"]["template"]["spec"][
            "containers"
        ][0]["env"]
    }
    ingress = find(objects, "Ingress", "artpulse-runtime")
    backend = ingress["spec"]["rules"][0]["http"]["paths"][0]["backend"]["service"]
    assert backend == {"name": "artpulse-runtime", "port": {"name": "http"}}


def test_external_database_component_replaces_the_in_cluster_postgres(tmp_path: Path) -> None:
    objects = render_overlay("prod", tmp_path, ("external-database",))
    names = {(o["kind"], o["metadata"]["name"]) for o in objects}
    assert not [n for n in names if n[1].startswith("artpulse-postgres") and n[0] != "Secret"]
    config = next(o for o in objects if o["metadata"]["name"].startswith("artpulse-config"))
    assert config["data"]["ARTPULSE_DB_HOST"] == "postgres.example.internal"
    assert config["data"]["ARTPULSE_DB_QUERY"] == "?sslmode=require"
    assert config["data"]["MLFLOW_TRACKING_URI"] == "http://artpulse-mlflow:5000"
    assert ("NetworkPolicy", "artpulse-external-database") in names


def test_no_deprecated_kustomize_fields() -> None:
    files = sorted(KUSTOMIZE_DIR.rglob("kustomization.yaml"))
    assert len(files) == 1 + len(OVERLAYS) + len(COMPONENTS)
    for path in files:
        document = yaml.safe_load(path.read_text())
        used = sorted(set(document) & set(DEPRECATED_FIELDS))
        assert used == [], f"{path.relative_to(REPO)} uses deprecated fields {used}"
        for label_set in document.get("labels", []):
            assert all(key.startswith("app.kubernetes.io/") for key in label_set["pairs"])
            if path.parent.parent.name == "overlays":
                assert label_set.get("includeSelectors") is False, f"{path}: selector labels"


def test_base_keeps_one_resource_per_file() -> None:
    base = KUSTOMIZE_DIR / "base"
    for path in base.glob("*.yaml"):
        if path.name == "kustomization.yaml":
            continue
        documents = [d for d in yaml.safe_load_all(path.read_text()) if d]
        assert len(documents) == 1, f"{path.name} holds {len(documents)} resources"


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_images_are_pinned_by_the_images_transformer(
    rendered: dict[str, list[Obj]], overlay: str
) -> None:
    kustomization = yaml.safe_load(
        (KUSTOMIZE_DIR / "overlays" / overlay / "kustomization.yaml").read_text()
    )
    pins = {entry["name"]: entry for entry in kustomization["images"]}
    assert set(pins) == {"artpulse-runtime", "artpulse-jobs", "postgres"}
    expected = {
        f"{pin.get('newName', name)}:{pin['newTag']}"
        + (f"@{pin['digest']}" if "digest" in pin else "")
        for name, pin in pins.items()
    }

    used = {
        container["image"]
        for _, template in workloads(rendered[overlay])
        for container in containers(template["spec"])
    }
    assert used == expected
