"""Policy over the rendered overlays, per workload: the runtime Deployment, its event spool and
network policy, the CronJobs, the MLflow server and the operator's access."""

from __future__ import annotations

import inspect
import re

from artpulse_contract.constants import MODEL_NAME, MODEL_URI_ENV
from artpulse_contract.events import EventRecorder
from artpulse_jobs.serving.server import SERVER_ENV_DEFAULTS, SERVER_MODULE
from support.kustomize import (
    Obj,
    containers,
    find,
    label_selector_matches,
)

PINNED_MODEL_URI = re.compile(rf"^models:/{re.escape(MODEL_NAME)}/[1-9][0-9]*$")

pytest_plugins = ["support.overlays_plugin"]


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
