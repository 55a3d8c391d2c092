"""The operator against a real API server (local-cluster) and a real SQLite MLflow registry.

One ``kopf run`` (in-process, ``KopfRunner``) serves the whole module; every test works in
its own namespace, deleted afterwards. Pods never start on this cluster (no kubelet), so a
short ``progressDeadlineSeconds`` makes ``ProgressDeadlineExceeded`` real.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from kopf.testing import KopfRunner
from kubernetes import client as k8s
from kubernetes import config as k8s_config
from kubernetes.client.exceptions import ApiException
from mlflow.tracking import MlflowClient

from artpulse_contract.constants import ALIAS_CHAMPION, ALIAS_PREVIOUS_CHAMPION, MODEL_NAME
from artpulse_contract.registry import tags
from artpulse_contract.registry.lookups import registered_aliases
from artpulse_operator import constants as c
from support.environment import free_port
from support.mlflow_server import server_ready, start_mlflow_server, stop
from support.operator_cluster import (
    apply_crd,
    artpulse_model,
    condition,
    create_namespace,
    delete_namespace,
    register_versions,
    replica_sets,
)
from support.operator_session import Cluster
from support.polling import wait_for

pytestmark = [pytest.mark.k8s, pytest.mark.slow]

URI = "models:/artpulse-classifier/{}"
WEBHOOK_SECRET = "operator-test-secret"


@pytest.fixture(scope="module")
def cluster(kubeconfig: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    """The CRD applied, a registry with 4 versions, and the operator running (all namespaces)."""
    k8s_config.load_kube_config(config_file=kubeconfig)
    apply_crd()
    registry_uri = register_versions(tmp_path_factory.mktemp("registry"), 4)
    state = Cluster(
        k8s.CoreV1Api(),
        k8s.AppsV1Api(),
        k8s.CustomObjectsApi(),
        registry_uri,
        MlflowClient(tracking_uri=registry_uri, registry_uri=registry_uri),
        free_port(),
    )
    with pytest.MonkeyPatch.context() as env:
        env.setenv("ARTPULSE_OPERATOR_WEBHOOK_PORT", str(state.webhook_port))
        env.setenv("ARTPULSE_OPERATOR_WEBHOOK_SECRET", WEBHOOK_SECRET)
        env.setenv("ARTPULSE_OPERATOR_MAX_BACKOFF_SECONDS", "2")
        env.setenv("ARTPULSE_OPERATOR_REGISTRY_TIMEOUT_SECONDS", "3")
        args = ["run", "--all-namespaces", "--standalone", "-m", "artpulse_operator"]
        with KopfRunner(args, timeout=60) as runner:
            yield state
    assert runner.exception is None, runner.stdout


@pytest.fixture
def kube(cluster: Cluster) -> Iterator[Cluster]:
    """The module's cluster with a fresh namespace; resources deleted while the operator runs."""
    cluster.namespace = create_namespace(cluster.core)
    cluster.set_alias("1")
    try:
        yield cluster
    finally:
        namespace = cluster.namespace
        cluster.custom.delete_collection_namespaced_custom_object(
            c.GROUP, c.VERSION, namespace, c.PLURAL
        )
        wait_for(
            "the operator to release its resources",
            lambda: (
                not cluster.custom.list_namespaced_custom_object(
                    c.GROUP, c.VERSION, namespace, c.PLURAL
                )["items"]
            ),
        )
        delete_namespace(cluster.core, namespace)


def test_alias_move_pins_the_new_version_and_rolls_a_new_replicaset(kube: Cluster) -> None:
    kube.create_deployment()
    kube.create_model()
    kube.wait_status("version 1 served", lambda s: s.get("phase") == c.PHASE_SERVING)
    assert kube.pinned() == (URI.format(1), "1")
    before = {rs.metadata.name for rs in replica_sets(kube.apps, kube.namespace)}

    kube.set_alias("2")
    status = kube.wait_status(
        "version 2 served",
        lambda s: s.get("servingVersion") == "2" and s.get("phase") == c.PHASE_SERVING,
    )
    assert kube.pinned() == (URI.format(2), "2")
    assert status["aliasVersion"] == "2" and status["modelUri"] == URI.format(2)
    assert condition(status, c.COND_READY)["status"] == "True"
    new = [rs for rs in replica_sets(kube.apps, kube.namespace) if rs.metadata.name not in before]
    assert [rs.spec.template.metadata.annotations[c.MODEL_VERSION_ANNOTATION] for rs in new] == [
        "2"
    ]
    assert {c.REASON_ROLLOUT, c.REASON_ROLLOUT_DONE} <= set(
        wait_for("rollout events", lambda: kube.events() or None)
    )


def test_setting_spec_version_promotes_in_the_registry_then_rolls_out(kube: Cluster) -> None:
    kube.create_deployment()
    kube.create_model()
    kube.wait_status("version 1 served", lambda s: s.get("servingVersion") == "1")

    kube.patch_spec(version=3)
    kube.wait_status("version 3 served", lambda s: s.get("servingVersion") == "3")
    assert kube.pinned() == (URI.format(3), "3")
    # The same alias moves as `artpulse promote`: the old champion is kept for a rollback.
    aliases = registered_aliases(kube.registry, MODEL_NAME)
    assert aliases[ALIAS_CHAMPION] == "3" and aliases[ALIAS_PREVIOUS_CHAMPION] == "1"
    version = kube.registry.get_model_version(MODEL_NAME, "3")
    assert version.tags[tags.PROMOTED_BY].startswith(f"artpulse-operator:{kube.namespace}/model")
    assert tags.PROMOTED_AT in version.tags
    assert version.tags[tags.GATE_DECISION] == tags.DECISION_FORCED
    assert "a resource edit promotes without the gate" in version.tags[tags.GATE_REASONS]
    wait_for("a Promoted event", lambda: c.REASON_PROMOTED in kube.events())

    kube.patch_spec(version=99)  # not registered: an error naming it, nothing moved
    status = kube.wait_status("phase Error", lambda s: s.get("phase") == c.PHASE_ERROR)
    assert "version 99" in status["message"]
    assert kube.pinned() == (URI.format(3), "3")
    assert registered_aliases(kube.registry, MODEL_NAME)[ALIAS_CHAMPION] == "3"


def test_the_same_version_again_creates_no_replicaset(kube: Cluster) -> None:
    kube.create_deployment()
    kube.create_model()
    kube.wait_status("version 1 served", lambda s: s.get("phase") == c.PHASE_SERVING)
    generation = kube.apps.read_namespaced_deployment("artpulse-runtime", kube.namespace)
    sets = len(replica_sets(kube.apps, kube.namespace))

    spec_generation = kube.patch_spec(version=1)  # the version already served
    kube.wait_status("the edit observed", lambda s: s.get("observedGeneration") == spec_generation)
    after = kube.apps.read_namespaced_deployment("artpulse-runtime", kube.namespace)
    assert after.metadata.generation == generation.metadata.generation
    assert len(replica_sets(kube.apps, kube.namespace)) == sets
    assert kube.status()["phase"] == c.PHASE_SERVING


def test_unreachable_registry_is_reported_and_recovers_without_touching_the_deployment(
    kube: Cluster, tmp_path: Path
) -> None:
    port = free_port()
    kube.create_deployment()
    kube.create_model(trackingUri=f"http://127.0.0.1:{port}")
    status = kube.wait_status(
        "RegistryReachable=False",
        lambda s: condition(s, c.COND_REGISTRY).get("status") == "False",
    )
    assert f"127.0.0.1:{port}" in condition(status, c.COND_REGISTRY)["message"]
    assert kube.pinned() == ("models:/artpulse-classifier@champion", None)
    wait_for("a RegistryUnreachable event", lambda: c.REASON_REGISTRY_DOWN in kube.events())

    server = start_mlflow_server(kube.registry_uri, port, tmp_path / "artifacts")
    try:
        status = kube.wait_status(
            "recovery through the registry server",
            lambda s: s.get("servingVersion") == "1",
            timeout=90,
        )
        assert condition(status, c.COND_REGISTRY)["status"] == "True"
        assert kube.pinned() == (URI.format(1), "1")
    finally:
        stop(server)


def test_missing_deployment_then_wrong_container_are_errors_until_fixed(kube: Cluster) -> None:
    kube.create_model()
    status = kube.wait_status("phase Error", lambda s: s.get("phase") == c.PHASE_ERROR)
    assert (
        f"Deployment 'artpulse-runtime' not found in namespace '{kube.namespace}'"
        in (status["message"])
    )
    assert condition(status, c.COND_DEPLOYMENT)["reason"] == c.REASON_DEPLOYMENT_MISSING

    kube.create_deployment(container="server")
    status = kube.wait_status(
        "the container error",
        lambda s: condition(s, c.COND_DEPLOYMENT).get("reason") == c.REASON_CONTAINER_MISSING,
    )
    assert "no container 'runtime' (containers: 'server')" in status["message"]
    assert status["phase"] == c.PHASE_ERROR

    kube.patch_spec(deployment={"container": "server"})
    kube.wait_status("version 1 served", lambda s: s.get("phase") == c.PHASE_SERVING)
    template = kube.apps.read_namespaced_deployment("artpulse-runtime", kube.namespace)
    assert template.spec.template.spec.containers[0].env[0].value == URI.format(1)
    assert {c.REASON_DEPLOYMENT_MISSING, c.REASON_CONTAINER_MISSING} <= set(kube.events())


def test_stalled_rollout_is_rolled_back_and_that_version_not_retried(kube: Cluster) -> None:
    kube.create_deployment()
    kube.create_model()
    kube.wait_status("version 1 served", lambda s: s.get("phase") == c.PHASE_SERVING)
    # One replica that can never become ready (no kubelet), with a 2 s progress deadline.
    kube.apps.patch_namespaced_deployment(
        "artpulse-runtime",
        kube.namespace,
        {"spec": {"replicas": 1, "progressDeadlineSeconds": 2}},
        _content_type="application/merge-patch+json",
    )
    good_sets = len(replica_sets(kube.apps, kube.namespace))

    kube.set_alias("4")
    status = kube.wait_status(
        "phase RolledBack", lambda s: s.get("phase") == c.PHASE_ROLLED_BACK, timeout=60
    )
    assert "ProgressDeadlineExceeded" in status["message"]
    assert status["failedVersion"] == "4" and status["servingVersion"] == "1"
    assert kube.pinned() == (URI.format(1), "1")
    # Restoring the template reuses the old ReplicaSet: just the one made for version 4.
    assert len(replica_sets(kube.apps, kube.namespace)) == good_sets + 1
    restored = kube.apps.read_namespaced_deployment("artpulse-runtime", kube.namespace)

    def restored_template_stalled() -> bool:
        view = kube.apps.read_namespaced_deployment("artpulse-runtime", kube.namespace)
        reasons = [cond.reason for cond in view.status.conditions or []]
        return (
            view.status.observed_generation == restored.metadata.generation
            and "ProgressDeadlineExceeded" in reasons
        )

    wait_for("the restored template to stall too (several polls)", restored_template_stalled)
    assert kube.pinned() == (URI.format(1), "1")  # version 4 not retried
    assert kube.status()["phase"] == c.PHASE_ROLLED_BACK
    assert c.REASON_ROLLED_BACK in kube.events()

    kube.set_alias("3")  # the alias moves: a new version is tried again
    kube.wait_status("version 3 pinned", lambda s: s.get("servingVersion") == "3")
    assert kube.pinned() == (URI.format(3), "3")


def test_schema_rejects_an_invalid_spec(kube: Cluster) -> None:
    body = artpulse_model("bad", kube.registry_uri, pollIntervalSeconds=0, version="two")
    with pytest.raises(ApiException) as caught:
        kube.custom.create_namespaced_custom_object(
            c.GROUP, c.VERSION, kube.namespace, c.PLURAL, body
        )
    assert caught.value.status == 422
    assert "pollIntervalSeconds" in str(caught.value.body)
    assert "spec.version" in str(caught.value.body)


def test_a_spec_the_schema_allows_but_the_operator_cannot_use_is_an_error(kube: Cluster) -> None:
    kube.create_deployment()
    kube.create_model(alias="latest")
    status = kube.wait_status("phase Error", lambda s: s.get("phase") == c.PHASE_ERROR)
    assert "spec.alias 'latest' is not a valid MLflow alias" in status["message"]
    assert kube.pinned() == ("models:/artpulse-classifier@champion", None)
    wait_for("an InvalidSpec event", lambda: c.REASON_INVALID_SPEC in kube.events())


def settled_on(version: str) -> Callable[[dict[str, Any]], bool]:
    """A status check: ``version`` served, phase Serving and no rollout in flight."""

    def check(status: dict[str, Any]) -> bool:
        return (
            status.get("servingVersion") == version
            and status.get("phase") == c.PHASE_SERVING
            and not status.get("rollout")
        )

    return check


def test_mlflow_alias_webhook_triggers_a_rollout_before_the_next_poll(
    kube: Cluster, tmp_path: Path
) -> None:
    port = free_port()
    server = start_mlflow_server(
        kube.registry_uri,
        port,
        tmp_path / "artifacts",
        # The receiver is on 127.0.0.1 over http: allow both for this test's MLflow.
        {"MLFLOW_WEBHOOK_ALLOW_PRIVATE_IPS": "true", "MLFLOW_WEBHOOK_ALLOWED_SCHEMES": "http"},
    )
    url = f"http://127.0.0.1:{port}"
    try:
        wait_for("the MLflow server", lambda: server_ready(url), timeout=90)
        remote = MlflowClient(tracking_uri=url, registry_uri=url)
        hook = remote.create_webhook(
            name=f"operator-{kube.namespace}",
            url=f"http://127.0.0.1:{kube.webhook_port}/webhook",
            events=["model_version_alias.created"],
            secret=WEBHOOK_SECRET,
        )
        kube.create_deployment()
        kube.create_model(trackingUri=url, pollIntervalSeconds=3600)  # polling cannot explain it
        # Until its rollout settles the loop re-checks every few seconds, which would see the
        # move without the webhook: wait for a settled rollout, then a 3600 s poll is all
        # there is besides the webhook.
        kube.wait_status("version 1 served and settled", settled_on("1"))

        remote.set_registered_model_alias(MODEL_NAME, "champion", "3")
        kube.wait_status("version 3 served", lambda s: s.get("servingVersion") == "3")
        assert kube.pinned() == (URI.format(3), "3")
        remote.delete_webhook(hook.webhook_id)
    finally:
        stop(server)


def test_a_paused_resource_leaves_the_deployment_alone_until_resumed(kube: Cluster) -> None:
    kube.create_deployment()
    kube.create_model(paused=True)
    kube.wait_status("phase Paused", lambda s: s.get("phase") == c.PHASE_PAUSED)
    assert kube.pinned() == ("models:/artpulse-classifier@champion", None)
    kube.patch_spec(paused=False)
    kube.wait_status("version 1 served", lambda s: s.get("servingVersion") == "1")
    assert kube.pinned() == (URI.format(1), "1")


def test_recreate_strategy_rolls_with_recreate_and_rolling_restores_a_rolling_update(
    kube: Cluster,
) -> None:
    kube.create_deployment()
    kube.create_model(rollout={"strategy": "Recreate"})
    kube.wait_status("version 1 served", lambda s: s.get("servingVersion") == "1")
    deployment = kube.apps.read_namespaced_deployment("artpulse-runtime", kube.namespace)
    assert deployment.spec.strategy.type == "Recreate"
    assert deployment.spec.strategy.rolling_update is None

    kube.patch_spec(rollout={"strategy": "Rolling"})
    kube.set_alias("2")
    kube.wait_status("version 2 served", lambda s: s.get("servingVersion") == "2")
    deployment = kube.apps.read_namespaced_deployment("artpulse-runtime", kube.namespace)
    assert deployment.spec.strategy.type == "RollingUpdate"
    assert deployment.spec.strategy.rolling_update.max_surge == "25%"  # the API's defaults
