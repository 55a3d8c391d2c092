"""``artpulse operator`` as a real process, signed in as its ServiceAccount with only the
permissions of ``manifests/rbac.yaml``: it still does its whole job (following the alias,
a canary with its own Deployment), and nothing more."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from kubernetes import client as k8s
from kubernetes import config as k8s_config
from kubernetes.client.exceptions import ApiException
from mlflow.tracking import MlflowClient

from artpulse_contract.constants import MODEL_NAME
from artpulse_contract.events import EventStore
from artpulse_operator import constants as c
from support.canary_traffic import write_traffic
from support.environment import free_port
from support.operator_cluster import (
    artpulse_model,
    create_namespace,
    delete_namespace,
    get_status,
    install_manifests,
    pinned,
    register_versions,
    runtime_deployment,
    service_account_kubeconfig,
)
from support.polling import wait_for

pytestmark = [pytest.mark.k8s, pytest.mark.slow]


@pytest.fixture
def namespace(kubeconfig: str) -> Iterator[str]:
    """A fresh namespace with the operator's manifests installed into it."""
    k8s_config.load_kube_config(config_file=kubeconfig)
    core = k8s.CoreV1Api()
    name = create_namespace(core, "apm-rbac")
    try:
        yield name
    finally:
        custom = k8s.CustomObjectsApi()
        for item in custom.list_namespaced_custom_object(c.GROUP, c.VERSION, name, c.PLURAL)[
            "items"
        ]:
            # The operator is gone: release kopf's finalizer so the namespace can go.
            custom.patch_namespaced_custom_object(
                c.GROUP,
                c.VERSION,
                name,
                c.PLURAL,
                item["metadata"]["name"],
                {"metadata": {"finalizers": None}},
            )
        delete_namespace(core, name)


def test_operator_command_works_with_only_its_role(
    kubeconfig: str, namespace: str, tmp_path: Path
) -> None:
    install_manifests(namespace, tmp_path / "kustomize")
    core, apps, custom = k8s.CoreV1Api(), k8s.AppsV1Api(), k8s.CustomObjectsApi()
    registry_uri = register_versions(tmp_path / "registry", 3)
    store = EventStore(f"sqlite:///{tmp_path / 'events.db'}")
    registry = MlflowClient(tracking_uri=registry_uri, registry_uri=registry_uri)
    registry.set_registered_model_alias(MODEL_NAME, "champion", "1")
    apps.create_namespaced_deployment(namespace, runtime_deployment())
    custom.create_namespaced_custom_object(
        c.GROUP, c.VERSION, namespace, c.PLURAL, artpulse_model("model", registry_uri)
    )
    account = service_account_kubeconfig(
        core, kubeconfig, namespace, "artpulse-operator", tmp_path / "sa-kubeconfig"
    )
    port = free_port()
    log = (tmp_path / "operator.log").open("w")
    process = subprocess.Popen(
        [
            str(Path(sys.executable).parent / "artpulse"),
            "operator",
            "--liveness-host",
            "127.0.0.1",
            "--liveness-port",
            str(port),
        ],
        env={
            **os.environ,
            "KUBECONFIG": str(account),
            "ARTPULSE_OPERATOR_NAMESPACE": namespace,
            "ARTPULSE_EVENTS_URL": store.display_url,
        },
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        wait_for(
            "version 1 pinned by the operator",
            lambda: pinned(apps, namespace) == ("models:/artpulse-classifier/1", "1"),
            timeout=60,
        )
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=5) as answer:
            assert answer.status == 200
        registry.set_registered_model_alias(MODEL_NAME, "champion", "2")
        wait_for(
            "version 2 pinned and reported",
            lambda: get_status(custom, namespace, "model").get("servingVersion") == "2",
        )
        assert pinned(apps, namespace) == ("models:/artpulse-classifier/2", "2")
        reasons = {e.reason for e in core.list_namespaced_event(namespace).items}
        assert c.REASON_ROLLOUT in reasons  # Events were created with the Role's permission

        # A canary: the Role lets it create, scale and delete artpulse-runtime-canary.
        rollout = {"strategy": "Canary", "steps": [50], "minPredictions": 20, "minRequests": 20}
        custom.patch_namespaced_custom_object(
            c.GROUP,
            c.VERSION,
            namespace,
            c.PLURAL,
            "model",
            {"spec": {"version": 3, "rollout": {**rollout, "minStepSeconds": 0}}},
        )
        wait_for(
            "the canary Deployment",
            lambda: any(
                d.metadata.name == "artpulse-runtime-canary"
                for d in apps.list_namespaced_deployment(namespace).items
            ),
        )
        write_traffic(store, "2", 40)
        write_traffic(store, "3", 40)
        wait_for(
            "version 3 promoted by the canary and pinned",
            lambda: pinned(apps, namespace) == ("models:/artpulse-classifier/3", "3"),
        )
        wait_for(
            "the canary Deployment removed",
            lambda: all(
                d.metadata.name != "artpulse-runtime-canary"
                for d in apps.list_namespaced_deployment(namespace).items
            ),
        )

        k8s_config.load_kube_config(config_file=str(account))
        as_operator = k8s.ApiClient()
        with pytest.raises(ApiException) as secrets:
            k8s.CoreV1Api(as_operator).list_namespaced_secret(namespace)
        with pytest.raises(ApiException) as deletion:
            k8s.AppsV1Api(as_operator).delete_namespaced_deployment(
                "artpulse-runtime", namespace, dry_run="All"
            )
        assert (secrets.value.status, deletion.value.status) == (403, 403)
    finally:
        k8s_config.load_kube_config(config_file=kubeconfig)
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=30)
        log.close()
    output = (tmp_path / "operator.log").read_text()
    assert "Forbidden" not in output  # no request outside the Role, not even kopf's scanning
