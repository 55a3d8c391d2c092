"""How fast the operator follows an alias move, and what it costs at rest.

Run against a live API server: ``KUBECONFIG=... .venv/bin/python bench/operator.py``
(``make operator-check`` starts a throwaway local-cluster for it). For each trigger it runs
``kopf run -m artpulse_operator`` as a real process on one namespace, moves the alias
several times, and measures the time from the move to the Deployment's pod template carrying
the new version. Polling moves land at random points of the poll cycle (median about half the
interval, maximum about the interval plus one reconcile). The webhook row uses a real
``mlflow server`` delivering signed alias webhooks, with a 3600 s poll so that only the
webhook can explain the speed. Then it reads the operator's resident memory at rest.
"""

from __future__ import annotations

import argparse
import os
import random
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from kubernetes import client as k8s
from kubernetes import config as k8s_config
from mlflow.tracking import MlflowClient

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests"))  # reuse the test helpers (registry, objects, waits)

from artpulse_contract.constants import MODEL_NAME  # noqa: E402
from artpulse_operator import constants as c  # noqa: E402
from support.environment import free_port  # noqa: E402
from support.mlflow_server import server_ready, start_mlflow_server, stop  # noqa: E402
from support.operator_cluster import (  # noqa: E402
    apply_crd,
    artpulse_model,
    create_namespace,
    delete_namespace,
    get_status,
    pinned,
    register_versions,
    runtime_deployment,
)
from support.polling import wait_for  # noqa: E402

VERSIONS = 4
WEBHOOK_SECRET = "bench-secret"


@dataclass
class Trigger:
    """One row: how the operator learns of a move."""

    label: str
    poll: int
    target: float
    """The issue's target for the slowest move, in seconds."""
    tracking_uri: str
    operator_env: dict[str, str] = field(default_factory=dict)


def rss_mib(pid: int) -> float:
    """Resident memory of process ``pid`` in MiB (Linux /proc)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(f"no VmRSS for pid {pid}")


def move_latencies(trigger: Trigger, moves: int, namespace: str) -> list[float]:
    """Seconds from each alias move to the Deployment pinned to the new version."""
    apps, custom = k8s.AppsV1Api(), k8s.CustomObjectsApi()
    registry = MlflowClient(tracking_uri=trigger.tracking_uri, registry_uri=trigger.tracking_uri)
    phases = random.Random(trigger.poll)
    latencies = []
    for move in range(moves):
        webhook = bool(trigger.operator_env)
        time.sleep(phases.uniform(0, 1 if webhook else trigger.poll))  # a random point in the cycle
        version = str(2 + move % (VERSIONS - 1))
        if pinned(apps, namespace)[1] == version:
            version = "1"
        registry.set_registered_model_alias(MODEL_NAME, "champion", version)
        started = time.perf_counter()
        wait_for(
            f"version {version} pinned",
            lambda: pinned(apps, namespace)[1] == version,  # noqa: B023 (called at once)
            timeout=30 if webhook else trigger.poll * 3 + 10,
        )
        latencies.append(time.perf_counter() - started)
        wait_for(
            "the rollout settled",
            lambda: get_status(custom, namespace, "bench").get("phase") == c.PHASE_SERVING,
        )
    return latencies


def measure(trigger: Trigger, moves: int, log_dir: Path) -> tuple[list[float], float]:
    """Run one operator process for ``trigger``; return the latencies and its RSS at rest."""
    core, apps, custom = k8s.CoreV1Api(), k8s.AppsV1Api(), k8s.CustomObjectsApi()
    MlflowClient(trigger.tracking_uri, trigger.tracking_uri).set_registered_model_alias(
        MODEL_NAME, "champion", "1"
    )
    namespace = create_namespace(core, "apm-bench")
    log = (log_dir / f"operator-{trigger.label.split()[0]}-{trigger.poll}.log").open("w")
    process = subprocess.Popen(
        [
            *(sys.executable, "-m", "kopf", "run", "--standalone"),
            *("-m", "artpulse_operator", "--namespace", namespace),
        ],
        env={**os.environ, **trigger.operator_env},
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        apps.create_namespaced_deployment(namespace, runtime_deployment())
        body = artpulse_model("bench", trigger.tracking_uri, pollIntervalSeconds=trigger.poll)
        custom.create_namespaced_custom_object(c.GROUP, c.VERSION, namespace, c.PLURAL, body)
        wait_for("version 1 served", lambda: pinned(apps, namespace)[1] == "1", timeout=120)
        latencies = move_latencies(trigger, moves, namespace)
        rest = rss_mib(process.pid)
        custom.delete_namespaced_custom_object(c.GROUP, c.VERSION, namespace, c.PLURAL, "bench")
        wait_for(
            "the resource released",
            lambda: (
                not custom.list_namespaced_custom_object(c.GROUP, c.VERSION, namespace, c.PLURAL)[
                    "items"
                ]
            ),
        )
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=60)
        log.close()
        delete_namespace(core, namespace)
    return latencies, rest


def webhook_trigger(registry_uri: str, work: Path) -> tuple[Trigger, subprocess.Popen[bytes]]:
    """A real MLflow server on the registry, with a signed alias webhook to the operator."""
    port, receiver = free_port(), free_port()
    server = start_mlflow_server(
        registry_uri,
        port,
        work / "artifacts",
        {"MLFLOW_WEBHOOK_ALLOW_PRIVATE_IPS": "true", "MLFLOW_WEBHOOK_ALLOWED_SCHEMES": "http"},
    )
    url = f"http://127.0.0.1:{port}"
    wait_for("the MLflow server", lambda: server_ready(url), timeout=120)
    MlflowClient(url, url).create_webhook(
        name="bench-operator",
        url=f"http://127.0.0.1:{receiver}/webhook",
        events=["model_version_alias.created"],
        secret=WEBHOOK_SECRET,
    )
    env = {
        "ARTPULSE_OPERATOR_WEBHOOK_PORT": str(receiver),
        "ARTPULSE_OPERATOR_WEBHOOK_HOST": "127.0.0.1",
        "ARTPULSE_OPERATOR_WEBHOOK_SECRET": WEBHOOK_SECRET,
    }
    return Trigger("webhook", 3600, 2.0, url, env), server


def main() -> None:
    """Measure each trigger and print latencies, the ratio to target and memory at rest."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--polls", type=int, nargs="+", default=[10, 1])
    parser.add_argument("--moves", type=int, default=6)
    parser.add_argument("--no-webhook", action="store_true", help="skip the webhook row")
    args = parser.parse_args()
    if not os.environ.get("KUBECONFIG"):
        sys.exit("bench/operator.py needs a live API server: set KUBECONFIG")
    k8s_config.load_kube_config()
    apply_crd()
    with tempfile.TemporaryDirectory() as folder:
        work = Path(folder)
        registry_uri = register_versions(work, VERSIONS)
        print(
            f"{'trigger':>16} {'moves':>5} {'min s':>6} {'median s':>8} {'max s':>6} "
            f"{'target s':>8} {'max/target':>10} {'RSS MiB':>8}"
        )
        triggers = [Trigger(f"poll {p} s", p, p + 2.0, registry_uri) for p in args.polls]
        server = None
        if not args.no_webhook:
            webhook, server = webhook_trigger(registry_uri, work)
            triggers.append(webhook)
        try:
            for trigger in triggers:
                latencies, rest = measure(trigger, args.moves, work)
                print(
                    f"{trigger.label:>16} {len(latencies):>5} {min(latencies):>6.2f} "
                    f"{statistics.median(latencies):>8.2f} {max(latencies):>6.2f} "
                    f"{trigger.target:>8.1f} {max(latencies) / trigger.target:>10.2f} "
                    f"{rest:>8.1f}"
                )
        finally:
            if server is not None:
                stop(server)


if __name__ == "__main__":
    main()
