"""Policy over the rendered overlays: security, resources, probes, images, references, wiring."""

from __future__ import annotations

import inspect
import re

import pytest

from artpulse_contract.constants import MODEL_NAME, MODEL_URI_ENV
from artpulse_contract.events import EventRecorder
from artpulse_jobs.serving.server import SERVER_ENV_DEFAULTS, SERVER_MODULE
from support.kustomize import (
    OVERLAYS,
    Obj,
    containers,
    copy_tree,
    find,
    label_selector_matches,
    render_dir,
    render_overlay,
    workloads,
)

LONG_RUNNING = ("Deployment", "StatefulSet", "DaemonSet")
WRITABLE_ENV = (
    "HOME",
    "TMPDIR",
    "MPLCONFIGDIR",
    "ARTPULSE_STATE_DIR",
    "MLSERVER_METRICS_DIR",
    "ARTPULSE_EVENT_SPOOL_DIR",
)
TOKEN_ALLOWED = {"artpulse-operator"}
RESTRICTED_VOLUME_TYPES = {
    "configMap",
    "csi",
    "downwardAPI",
    "emptyDir",
    "ephemeral",
    "persistentVolumeClaim",
    "projected",
    "secret",
}
PINNED_MODEL_URI = re.compile(rf"^models:/{re.escape(MODEL_NAME)}/[1-9][0-9]*$")


# Each overlay alone, and prod with the optional components that add workloads or traffic
# (external-database removes PostgreSQL, so its peers would select nothing: checked apart).
RENDERINGS = {
    **{overlay: (overlay, ()) for overlay in OVERLAYS},
    "prod+components": ("prod", ("ingress", "servicemonitor", "registry-webhook")),
}


@pytest.fixture(scope="module", params=sorted(RENDERINGS))
def objects(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> list[Obj]:
    """The rendered objects of one overlay (or overlay with components)."""
    overlay, components = RENDERINGS[request.param]
    workdir = tmp_path_factory.mktemp(f"policy-{overlay}")
    return render_overlay(overlay, workdir, components)


def _label(obj: Obj) -> str:
    return f"{obj['kind']}/{obj['metadata']['name']}"


def _service_selects(service: Obj, labels: dict[str, str]) -> bool:
    selector = service["spec"].get("selector")
    return bool(selector) and label_selector_matches({"matchLabels": selector}, labels)


def _named(objects: list[Obj], kind: str) -> set[str]:
    return {o["metadata"]["name"] for o in objects if o["kind"] == kind}


def test_every_pod_runs_locked_down(objects: list[Obj]) -> None:
    checked = 0
    for obj, template in workloads(objects):
        spec = template["spec"]
        pod = spec.get("securityContext", {})
        assert pod.get("runAsNonRoot") is True, f"{_label(obj)}: runAsNonRoot"
        assert pod.get("runAsUser", 0) > 0, f"{_label(obj)}: numeric non-root runAsUser"
        assert pod.get("seccompProfile") == {"type": "RuntimeDefault"}, _label(obj)
        # The rest of the Pod Security "restricted" profile: no host namespaces, only these
        # volume types.
        assert not any(spec.get(key) for key in ("hostNetwork", "hostPID", "hostIPC")), _label(obj)
        for volume in spec.get("volumes", []):
            kinds = set(volume) - {"name"}
            assert kinds <= RESTRICTED_VOLUME_TYPES, f"{_label(obj)}: volume {volume['name']}"
        for container in containers(spec):
            where = f"{_label(obj)} container {container['name']}"
            context = container.get("securityContext", {})
            assert context.get("allowPrivilegeEscalation") is False, where
            assert context.get("readOnlyRootFilesystem") is True, where
            assert context.get("capabilities") == {"drop": ["ALL"]}, where
            assert not context.get("privileged"), where
            assert context.get("runAsUser", 1) != 0, where
            checked += 1
    assert checked >= 7


def test_namespace_enforces_the_restricted_pod_security_profile(objects: list[Obj]) -> None:
    (namespace,) = [o for o in objects if o["kind"] == "Namespace"]
    labels = namespace["metadata"]["labels"]
    assert labels["pod-security.kubernetes.io/enforce"] == "restricted"
    assert {o["metadata"]["namespace"] for o in objects if "namespace" in o["metadata"]} == {
        namespace["metadata"]["name"]
    }


def test_service_account_tokens_only_where_the_api_is_used(objects: list[Obj]) -> None:
    for obj, template in workloads(objects):
        spec = template["spec"]
        account = spec.get("serviceAccountName", "default")
        mounted = spec.get("automountServiceAccountToken", True)
        assert mounted is (account in TOKEN_ALLOWED), f"{_label(obj)} ({account}) token={mounted}"
    for account in (o for o in objects if o["kind"] == "ServiceAccount"):
        name = account["metadata"]["name"]
        if name not in TOKEN_ALLOWED:
            assert account.get("automountServiceAccountToken") is False, name


def test_operator_account_is_bound_to_rbac(objects: list[Obj]) -> None:
    bindings = [o for o in objects if o["kind"] in ("RoleBinding", "ClusterRoleBinding")]
    bound = {
        (subject.get("namespace"), subject["name"])
        for binding in bindings
        for subject in binding["subjects"]
        if subject["kind"] == "ServiceAccount"
    }
    operator = find(objects, "Deployment", "artpulse-operator")
    account = operator["spec"]["template"]["spec"]["serviceAccountName"]
    assert (operator["metadata"]["namespace"], account) in bound


def test_every_container_has_requests_and_limits(objects: list[Obj]) -> None:
    for obj, template in workloads(objects):
        for container in containers(template["spec"]):
            resources = container.get("resources", {})
            where = f"{_label(obj)} container {container['name']}"
            for section in ("requests", "limits"):
                assert set(resources.get(section, {})) >= {"cpu", "memory"}, f"{where} {section}"


def test_long_running_containers_have_probes(objects: list[Obj]) -> None:
    services = [o for o in objects if o["kind"] == "Service"]
    for obj, template in workloads(objects):
        if obj["kind"] not in LONG_RUNNING:
            continue
        labels = template["metadata"]["labels"]
        behind_service = any(_service_selects(s, labels) for s in services)
        for container in template["spec"]["containers"]:
            where = f"{_label(obj)} container {container['name']}"
            assert "livenessProbe" in container, where
            if behind_service:
                assert "readinessProbe" in container, where


def test_images_are_tagged_and_never_latest(objects: list[Obj]) -> None:
    for obj, template in workloads(objects):
        for container in containers(template["spec"]):
            image = container["image"]
            reference, _, digest = image.partition("@")
            name, _, tag = reference.rpartition(":")
            assert name and tag and "/" not in tag, f"{_label(obj)}: untagged image {image}"
            assert tag != "latest", f"{_label(obj)}: {image}"
            assert not digest or re.fullmatch(r"sha256:[0-9a-f]{64}", digest), image


def test_writable_paths_are_on_mounted_volumes(objects: list[Obj]) -> None:
    # readOnlyRootFilesystem: every directory a program writes (HOME, TMPDIR, ...) must live
    # on a mounted volume.
    for obj, template in workloads(objects):
        for container in containers(template["spec"]):
            mounts = [m["mountPath"] for m in container.get("volumeMounts", [])]
            for variable in container.get("env", []):
                if variable["name"] in WRITABLE_ENV:
                    path = variable["value"]
                    assert any(path == m or path.startswith(m.rstrip("/") + "/") for m in mounts), (
                        f"{_label(obj)} container {container['name']}: {variable['name']}={path}"
                    )


def _references(spec: Obj) -> dict[str, set[str]]:
    found: dict[str, set[str]] = {
        "ConfigMap": set(),
        "Secret": set(),
        "PersistentVolumeClaim": set(),
    }
    found["ServiceAccount"] = {spec.get("serviceAccountName", "default")}
    for volume in spec.get("volumes", []):
        if "configMap" in volume:
            found["ConfigMap"].add(volume["configMap"]["name"])
        if "secret" in volume:
            found["Secret"].add(volume["secret"]["secretName"])
        if "persistentVolumeClaim" in volume:
            found["PersistentVolumeClaim"].add(volume["persistentVolumeClaim"]["claimName"])
    for container in containers(spec):
        for source in container.get("envFrom", []):
            if "configMapRef" in source:
                found["ConfigMap"].add(source["configMapRef"]["name"])
            if "secretRef" in source:
                found["Secret"].add(source["secretRef"]["name"])
        for variable in container.get("env", []):
            origin = variable.get("valueFrom", {})
            if "configMapKeyRef" in origin:
                found["ConfigMap"].add(origin["configMapKeyRef"]["name"])
            if "secretKeyRef" in origin:
                found["Secret"].add(origin["secretKeyRef"]["name"])
    return found


def test_every_reference_resolves(objects: list[Obj]) -> None:
    for obj, template in workloads(objects):
        claim_templates = {
            t["metadata"]["name"] for t in obj.get("spec", {}).get("volumeClaimTemplates", [])
        }
        for kind, names in _references(template["spec"]).items():
            existing = _named(objects, kind)
            if kind == "PersistentVolumeClaim":
                existing |= claim_templates
            missing = names - existing
            assert not missing, f"{_label(obj)} refers to missing {kind} {sorted(missing)}"
        for container in containers(template["spec"]):
            volumes = {v["name"] for v in template["spec"].get("volumes", [])} | claim_templates
            for mount in container.get("volumeMounts", []):
                assert mount["name"] in volumes, f"{_label(obj)}: volume {mount['name']}"


def test_secret_keys_exist(objects: list[Obj]) -> None:
    secrets = {o["metadata"]["name"]: o for o in objects if o["kind"] == "Secret"}
    for obj, template in workloads(objects):
        for container in containers(template["spec"]):
            for variable in container.get("env", []):
                ref = variable.get("valueFrom", {}).get("secretKeyRef")
                if ref:
                    data = secrets[ref["name"]].get("data", {})
                    assert ref["key"] in data, f"{_label(obj)}: {ref['name']}/{ref['key']}"


def test_services_target_named_container_ports(objects: list[Obj]) -> None:
    pods = list(workloads(objects))
    for service in (o for o in objects if o["kind"] == "Service"):
        selected = [t for _, t in pods if _service_selects(service, t["metadata"]["labels"])]
        assert selected, f"Service {service['metadata']['name']} selects no pods"
        for port in service["spec"]["ports"]:
            target = port["targetPort"]
            assert isinstance(target, str), f"{service['metadata']['name']}: unnamed targetPort"
            for template in selected:
                names = {p["name"] for c in template["spec"]["containers"] for p in c["ports"]}
                assert target in names, f"{service['metadata']['name']}: {target} not in {names}"


def test_network_policies_select_existing_pods(objects: list[Obj]) -> None:
    labels = [t["metadata"]["labels"] for _, t in workloads(objects)]
    for policy in (o for o in objects if o["kind"] == "NetworkPolicy"):
        name = policy["metadata"]["name"]
        selectors = [policy["spec"]["podSelector"]]
        for rule in [*policy["spec"].get("ingress", []), *policy["spec"].get("egress", [])]:
            for peer in [*rule.get("from", []), *rule.get("to", [])]:
                if "podSelector" in peer and "namespaceSelector" not in peer:
                    selectors.append(peer["podSelector"])
        for selector in selectors:
            assert any(label_selector_matches(selector, pod) for pod in labels), (
                f"NetworkPolicy {name}: {selector} selects no pod"
            )


@pytest.fixture(scope="module")
def base(tmp_path_factory: pytest.TempPathFactory) -> list[Obj]:
    """The base rendered from a copy (it includes the manifests folder next to it)."""
    return render_dir(copy_tree(tmp_path_factory.mktemp("base")) / "base")


def test_overlays_do_not_change_selectors(objects: list[Obj], base: list[Obj]) -> None:
    # Selectors are immutable on a live Deployment/StatefulSet: overlays must leave them alone.
    compared = 0
    for obj in objects:
        in_base = any(
            o["kind"] == obj["kind"] and o["metadata"]["name"] == obj["metadata"]["name"]
            for o in base
        )
        if obj["kind"] in (*LONG_RUNNING, "Service") and in_base:
            original = find(base, obj["kind"], obj["metadata"]["name"])
            assert obj["spec"]["selector"] == original["spec"]["selector"], _label(obj)
            compared += 1
    assert compared >= 7


def test_runtime_deployment_contract(objects: list[Obj]) -> None:
    runtime = find(objects, "Deployment", "artpulse-runtime")
    spec = runtime["spec"]["template"]["spec"]
    container = next(c for c in spec["containers"] if c["name"] == "runtime")
    ports = {p["name"]: p["containerPort"] for p in container["ports"]}
    assert ports == {"http": 8080, "grpc": 8081, "metrics": 8082}
    assert container["readinessProbe"]["httpGet"]["path"] == f"/v2/models/{MODEL_NAME}/ready"
    assert container["livenessProbe"]["httpGet"]["path"] == "/v2/health/live"
    # Liveness counts only after start-up (imports on the event loop): a slow start is no restart.
    startup = container["startupProbe"]
    assert startup["httpGet"]["path"] == "/v2/health/live"
    assert startup["periodSeconds"] * startup["failureThreshold"] >= 120
    assert "initialDelaySeconds" not in container["livenessProbe"]
    env = {v["name"]: v.get("value") for v in container["env"]}
    assert PINNED_MODEL_URI.match(env[MODEL_URI_ENV]), env[MODEL_URI_ENV]
    # The server runs directly here: the defaults `artpulse serve` applies must be set.
    assert {k: env.get(k) for k in SERVER_ENV_DEFAULTS} == dict(SERVER_ENV_DEFAULTS)
    assert env["ARTPULSE_EVENTS_URL"].startswith("postgresql+psycopg://")
    # The grace period covers the preStop sleep plus the event recorder's flush timeout.
    pre_stop = container["lifecycle"]["preStop"]["exec"]["command"]
    assert pre_stop[0] == "sleep"
    flush_timeout = inspect.signature(EventRecorder.close).parameters["timeout"].default
    assert spec["terminationGracePeriodSeconds"] >= int(pre_stop[1]) + flush_timeout
    # The guarded server runs, not plain `mlserver start`; docs stay off.
    assert container["command"][:3] == ["python", "-m", SERVER_MODULE]
    assert env.get("ARTPULSE_API_DOCS") in (None, "false")


def _quantity_bytes(quantity: str) -> int:
    units = {"Ki": 2**10, "Mi": 2**20, "Gi": 2**30}
    for suffix, factor in units.items():
        if quantity.endswith(suffix):
            return int(quantity[: -len(suffix)]) * factor
    return int(quantity)


def test_event_spool_is_a_sized_emptydir_larger_than_its_bound(objects: list[Obj]) -> None:
    runtime = find(objects, "Deployment", "artpulse-runtime")
    spec = runtime["spec"]["template"]["spec"]
    container = next(c for c in spec["containers"] if c["name"] == "runtime")
    env = {v["name"]: v.get("value") for v in container["env"]}
    mounts = {m["mountPath"]: m["name"] for m in container["volumeMounts"]}
    volume = next(
        v for v in spec["volumes"] if v["name"] == mounts[env["ARTPULSE_EVENT_SPOOL_DIR"]]
    )
    bound = int(env["ARTPULSE_EVENT_SPOOL_MAX_BYTES"])
    assert bound > 0
    assert _quantity_bytes(volume["emptyDir"]["sizeLimit"]) > bound


def test_runtime_network_policy_admits_named_callers_only(objects: list[Obj]) -> None:
    policies = [
        o
        for o in objects
        if o["kind"] == "NetworkPolicy"
        and label_selector_matches(
            o["spec"]["podSelector"], {"app.kubernetes.io/name": "artpulse-runtime"}
        )
        and "Ingress" in o["spec"]["policyTypes"]
    ]
    if not any(o["kind"] == "NetworkPolicy" for o in objects):
        return  # dev: no NetworkPolicies at all (the cluster's default: everything open)
    assert policies
    for policy in policies:
        for rule in policy["spec"].get("ingress", []):
            assert rule.get("from"), f"{policy['metadata']['name']}: a rule admits any source"
            assert rule.get("ports"), f"{policy['metadata']['name']}: a rule admits any port"


def test_cronjobs_are_bounded(objects: list[Obj]) -> None:
    cronjobs = [o for o in objects if o["kind"] == "CronJob"]
    assert {c["metadata"]["name"] for c in cronjobs} == {
        "artpulse-train",
        "artpulse-drift",
        "artpulse-retrain",
    }
    for cronjob in cronjobs:
        spec = cronjob["spec"]
        job = spec["jobTemplate"]["spec"]
        where = cronjob["metadata"]["name"]
        assert spec["concurrencyPolicy"] == "Forbid", where
        assert spec["startingDeadlineSeconds"] > 0, where
        assert spec["successfulJobsHistoryLimit"] >= 1, where
        assert spec["failedJobsHistoryLimit"] >= 1, where
        for field in ("backoffLimit", "activeDeadlineSeconds", "ttlSecondsAfterFinished"):
            assert isinstance(job.get(field), int), f"{where}: {field}"
    # Drift found (exit 3) fails the Job without a retry, by backoffLimit alone: a
    # podFailurePolicy (1.26+) would be dropped silently by the older servers supported.
    drift = find(objects, "CronJob", "artpulse-drift")["spec"]["jobTemplate"]["spec"]
    assert drift["backoffLimit"] == 0
    assert "podFailurePolicy" not in drift


def test_mlflow_server_settings(objects: list[Obj]) -> None:
    mlflow = find(objects, "Deployment", "artpulse-mlflow")
    container = mlflow["spec"]["template"]["spec"]["containers"][0]
    args = container["args"]
    options = dict(zip(args, [*args[1:], ""], strict=True))
    assert options["--backend-store-uri"].startswith("postgresql+psycopg://")
    assert options["--artifacts-destination"] == "/mlartifacts"
    assert options["--workers"] == "1"
    assert "--serve-artifacts" in args
    assert "artpulse-mlflow:5000" in options["--allowed-hosts"].split(",")
    env = {v["name"]: v.get("value") for v in container["env"]}
    assert env["MLFLOW_SERVER_ENABLE_JOB_EXECUTION"] == "false"
    mounts = {m["mountPath"]: m["name"] for m in container["volumeMounts"]}
    volumes = {v["name"]: v for v in mlflow["spec"]["template"]["spec"]["volumes"]}
    assert "persistentVolumeClaim" in volumes[mounts["/mlartifacts"]]


def test_operator_reads_the_event_store_and_may_remove_only_its_canary(
    objects: list[Obj],
) -> None:
    operator = find(objects, "Deployment", "artpulse-operator")
    container = operator["spec"]["template"]["spec"]["containers"][0]
    env = {v["name"]: v.get("value") for v in container["env"]}
    runtime = find(objects, "Deployment", "artpulse-runtime")
    serving = containers(runtime["spec"]["template"]["spec"])[0]
    runtime_env = {v["name"]: v.get("value") for v in serving["env"]}
    assert env["ARTPULSE_EVENTS_URL"] == runtime_env["ARTPULSE_EVENTS_URL"]  # the same store
    role = find(objects, "Role", "artpulse-operator")
    deployments = [r for r in role["rules"] if "deployments" in r["resources"]]
    model = next(o for o in objects if o["kind"] == "ArtPulseModel")
    canary = model["spec"].get("deployment", {}).get("name", "artpulse-runtime") + "-canary"
    assert {verb: rule.get("resourceNames") for rule in deployments for verb in rule["verbs"]} == {
        "get": None,
        "patch": None,
        "create": None,
        "delete": [canary],
    }
    policies = [o for o in objects if o["kind"] == "NetworkPolicy"]
    if policies:  # prod: the operator may reach PostgreSQL and PostgreSQL lets it in
        egress = find(objects, "NetworkPolicy", "artpulse-operator")["spec"]["egress"]
        assert any(
            peer.get("podSelector", {}).get("matchLabels", {}).get("app.kubernetes.io/name")
            == "artpulse-postgres"
            for rule in egress
            for peer in rule.get("to", [])
        )
        ingress = find(objects, "NetworkPolicy", "artpulse-postgres")["spec"]["ingress"]
        labels = operator["spec"]["template"]["metadata"]["labels"]
        assert any(
            label_selector_matches(peer["podSelector"], labels)
            for rule in ingress
            for peer in rule.get("from", [])
        )
