"""Policy over the rendered overlays: security, resources, probes, images, references, wiring."""

from __future__ import annotations

import re

import pytest

from support.kustomize import (
    Obj,
    containers,
    copy_tree,
    find,
    label_selector_matches,
    render_dir,
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

pytest_plugins = ["support.overlays_plugin"]


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
