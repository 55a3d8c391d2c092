"""Canary rollouts by the operator on a real API server (local-cluster), a real SQLite MLflow
registry and a real event store (a SQLite file) the tests write live traffic into.

Each test runs the operator in-process (``KopfRunner``) in its own namespace. Pods never start
on this cluster (no kubelet): the traffic a canary is judged on is what the test writes into
the event store, as the runtime would record it (prediction events and serving outcomes).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from kopf.testing import KopfRunner
from kubernetes import client as k8s
from kubernetes import config as k8s_config
from mlflow.tracking import MlflowClient

from artpulse_contract.constants import (
    ALIAS_CHALLENGER,
    ALIAS_CHAMPION,
    ALIAS_PREVIOUS_CHAMPION,
    MODEL_NAME,
    MODEL_URI_ENV,
    ROLLOUT_EXPERIMENT,
)
from artpulse_contract.events import EventStore
from artpulse_contract.registry import tags
from artpulse_contract.registry.lookups import registered_aliases
from artpulse_operator import constants as c
from support.canary_traffic import EVEN, SHIFTED, write_traffic
from support.operator_cluster import (
    apply_crd,
    create_namespace,
    delete_namespace,
    register_versions,
)
from support.operator_session import Cluster
from support.polling import wait_for

pytestmark = [pytest.mark.k8s, pytest.mark.slow]

URI = "models:/artpulse-classifier/{}"
CANARY = "artpulse-runtime-canary"
ROLLOUT = {
    "strategy": "Canary",
    "steps": [25, 50, 100],
    "minPredictions": 60,
    "minRequests": 60,
    "minStepSeconds": 0,
}
"""Two analysed steps (25% and 50% of the traffic), then the promotion."""


@pytest.fixture(scope="module")
def setup(kubeconfig: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    """The CRD applied, a registry with 4 versions and an event store (the operator per test)."""
    k8s_config.load_kube_config(config_file=kubeconfig)
    apply_crd()
    folder = tmp_path_factory.mktemp("canary")
    registry_uri = register_versions(folder / "registry", 4)
    events_url = f"sqlite:///{folder / 'events.db'}"
    store = EventStore(events_url)
    yield {"registry_uri": registry_uri, "events_url": events_url, "store": store}
    store.close()


@pytest.fixture
def kube(setup: dict[str, Any]) -> Iterator[Cluster]:
    """A fresh namespace and champion 1; resources released by the test's operator."""
    uri = setup["registry_uri"]
    cluster = Cluster(
        k8s.CoreV1Api(),
        k8s.AppsV1Api(),
        k8s.CustomObjectsApi(),
        uri,
        MlflowClient(tracking_uri=uri, registry_uri=uri),
        0,
    )
    cluster.namespace = create_namespace(cluster.core, "apm-canary")
    for alias in (ALIAS_CHALLENGER, ALIAS_PREVIOUS_CHAMPION):
        if alias in registered_aliases(cluster.registry, MODEL_NAME):
            cluster.registry.delete_registered_model_alias(MODEL_NAME, alias)
    cluster.set_alias("1")
    try:
        yield cluster
    finally:
        delete_namespace(cluster.core, cluster.namespace)


@contextmanager
def operator(setup: dict[str, Any], namespace: str) -> Iterator[KopfRunner]:
    """The operator watching ``namespace``, reading the module's event store."""
    with pytest.MonkeyPatch.context() as env:
        env.setenv("ARTPULSE_EVENTS_URL", setup["events_url"])
        env.setenv("ARTPULSE_OPERATOR_MAX_BACKOFF_SECONDS", "2")
        args = ["run", "--namespace", namespace, "--standalone", "-m", "artpulse_operator"]
        with KopfRunner(args, timeout=60) as runner:
            yield runner
    assert runner.exception is None, runner.stdout


def release(kube: Cluster) -> None:
    """Delete the resources while the operator runs, so it removes its finalizer."""
    kube.custom.delete_collection_namespaced_custom_object(
        c.GROUP, c.VERSION, kube.namespace, c.PLURAL
    )
    wait_for(
        "the operator to release its resources",
        lambda: (
            not kube.custom.list_namespaced_custom_object(
                c.GROUP, c.VERSION, kube.namespace, c.PLURAL
            )["items"]
        ),
    )


def serving_on_three_replicas(kube: Cluster, **rollout: Any) -> None:
    """The runtime Deployment settled on version 1, then scaled to 3 replicas by its owner."""
    kube.create_deployment()  # 0 replicas: the first rollout completes without pods
    kube.create_model(rollout={**ROLLOUT, **rollout})
    kube.wait_status("version 1 served", lambda s: s.get("phase") == c.PHASE_SERVING)
    kube.apps.patch_namespaced_deployment(
        "artpulse-runtime", kube.namespace, {"spec": {"replicas": 3}}
    )


def canary_started(kube: Cluster, version: int) -> dict[str, Any]:
    """Serving on version 1 with 3 replicas, then ``spec.version`` set: the canary's status
    once it runs its first step."""
    serving_on_three_replicas(kube)
    kube.patch_spec(version=version)
    return kube.wait_status("the canary at step 1", at_step(1))


def canary_deployment(kube: Cluster) -> Any:
    """The canary Deployment, or None."""
    found = [
        d
        for d in kube.apps.list_namespaced_deployment(kube.namespace).items
        if d.metadata.name == CANARY
    ]
    return found[0] if found else None


def at_step(step: int) -> Any:
    """A status check: a canary in flight at ``step`` (1-based)."""
    return lambda s: (
        (s.get("canary") or {}).get("step") == step and s.get("phase") == c.PHASE_CANARY
    )


def rollout_run(kube: Cluster, version: str) -> Any:
    """The MLflow run of this test's canary of ``version`` (the registry is the module's)."""
    experiment = kube.registry.get_experiment_by_name(ROLLOUT_EXPERIMENT)
    (run,) = kube.registry.search_runs(
        [experiment.experiment_id],
        f"tags.`{tags.CANDIDATE_VERSION}` = '{version}' and "
        f"tags.`{tags.CANARY_RESOURCE}` = '{kube.namespace}/model'",
    )
    return run


def test_a_good_canary_steps_up_as_events_arrive_and_is_promoted(
    setup: dict[str, Any], kube: Cluster
) -> None:
    store: EventStore = setup["store"]
    with operator(setup, kube.namespace):
        status = canary_started(kube, 2)
        canary = canary_deployment(kube)
        template = canary.spec.template
        env = {e.name: e.value for e in template.spec.containers[0].env}
        assert env[MODEL_URI_ENV] == URI.format(2)
        assert template.metadata.annotations[c.MODEL_VERSION_ANNOTATION] == "2"
        labels = template.metadata.labels
        assert labels[c.TRACK_LABEL] == c.TRACK_CANARY
        assert labels["app.kubernetes.io/name"] == "artpulse-runtime"  # what the Service selects
        assert canary.metadata.owner_references[0].kind == c.KIND
        # 25% next to 3 stable replicas: 1 canary replica, a realised share of 25%.
        assert (canary.spec.replicas, status["canary"]["share"]) == (1, 25)
        assert kube.pinned() == (URI.format(1), "1")  # the stable side is untouched
        assert registered_aliases(kube.registry, MODEL_NAME)[ALIAS_CHAMPION] == "1"

        write_traffic(store, "1", 100, EVEN, seed=1)
        write_traffic(store, "2", 30, EVEN, seed=2)  # fewer than minPredictions: waits
        status = kube.wait_status(
            "the analysis to wait for predictions",
            lambda s: ((s.get("canary") or {}).get("analysis") or {}).get("verdict") == "Wait",
        )
        assert "30 of 60 predictions" in status["canary"]["analysis"]["message"]
        assert status["canary"]["step"] == 1

        write_traffic(store, "2", 40, EVEN, seed=3)
        status = kube.wait_status("the canary at step 2", at_step(2))
        assert canary_deployment(kube).spec.replicas == 3  # 50%: as many as the stable side
        assert status["canary"]["share"] == 50

        write_traffic(store, "1", 100, EVEN, seed=4)
        write_traffic(store, "2", 100, EVEN, seed=5)
        status = kube.wait_status(
            "the promotion", lambda s: (s.get("canaryResult") or {}).get("outcome") == "Promoted"
        )
        wait_for("the canary Deployment removed", lambda: canary_deployment(kube) is None)
        assert kube.pinned() == (URI.format(2), "2")
        aliases = registered_aliases(kube.registry, MODEL_NAME)
        assert aliases[ALIAS_CHAMPION] == "2" and aliases[ALIAS_PREVIOUS_CHAMPION] == "1"
        version = kube.registry.get_model_version(MODEL_NAME, "2")
        assert version.tags[tags.CANARY_OUTCOME] == tags.OUTCOME_PROMOTED
        assert version.tags[tags.PROMOTED_BY].endswith("(canary)")
        run = rollout_run(kube, "2")
        assert run.info.status == "FINISHED"
        assert run.data.tags[tags.CANARY_OUTCOME] == tags.OUTCOME_PROMOTED
        history = kube.registry.get_metric_history(run.info.run_id, "label_js_distance")
        assert sorted(m.step for m in history) == [1, 2]
        assert version.tags[tags.CANARY_RUN_ID] == run.info.run_id
        reasons = set(kube.events())
        assert {c.REASON_CANARY_STARTED, c.REASON_CANARY_STEP, c.REASON_CANARY_PROMOTED} <= reasons
        release(kube)


def test_a_bad_canary_is_aborted_and_not_retried_until_the_spec_changes(
    setup: dict[str, Any], kube: Cluster
) -> None:
    store: EventStore = setup["store"]
    with operator(setup, kube.namespace):
        canary_started(kube, 3)
        write_traffic(store, "1", 200, EVEN, seed=6)
        write_traffic(store, "3", 100, SHIFTED, top=0.6, seed=7)
        status = kube.wait_status("the abort", lambda s: s.get("phase") == c.PHASE_ABORTED)
        assert "labelDistance" in status["message"] and "confidenceDrop" in status["message"]
        assert status["canaryResult"]["outcome"] == "Aborted"
        wait_for("the canary Deployment removed", lambda: canary_deployment(kube) is None)
        assert kube.pinned() == (URI.format(1), "1")
        assert registered_aliases(kube.registry, MODEL_NAME)[ALIAS_CHAMPION] == "1"
        version = kube.registry.get_model_version(MODEL_NAME, "3")
        assert version.tags[tags.CANARY_OUTCOME] == tags.OUTCOME_ABORTED
        assert "labelDistance" in version.tags[tags.CANARY_REASON]
        assert rollout_run(kube, "3").info.status == "FAILED"
        assert c.REASON_CANARY_ABORTED in kube.events()

        generation = kube.status()["observedGeneration"]
        kube.wait_status(
            "polls after the abort", lambda s: s.get("observedGeneration") == generation
        )
        assert canary_deployment(kube) is None and kube.status()["phase"] == c.PHASE_ABORTED
        kube.patch_spec(rollout={**ROLLOUT, "minStepSeconds": 1})  # an edit: try again
        kube.wait_status("a new canary", at_step(1))
        assert canary_deployment(kube) is not None
        release(kube)


def test_an_operator_restart_resumes_the_canary_from_its_status(
    setup: dict[str, Any], kube: Cluster
) -> None:
    store: EventStore = setup["store"]
    with operator(setup, kube.namespace):
        before = canary_started(kube, 4)["canary"]
    # The operator is gone; the canary Deployment and the status stay.
    assert canary_deployment(kube) is not None
    write_traffic(store, "1", 100, EVEN, seed=8)
    write_traffic(store, "4", 100, EVEN, seed=9)
    with operator(setup, kube.namespace):
        status = kube.wait_status("step 2 after the restart", at_step(2))
        after = status["canary"]
        assert (after["startedAt"], after["runId"]) == (before["startedAt"], before["runId"])
        assert c.REASON_CANARY_STARTED in kube.events()
        release(kube)


def test_pausing_holds_the_canary_and_spec_edits_restart_or_cancel_it(
    setup: dict[str, Any], kube: Cluster
) -> None:
    store: EventStore = setup["store"]
    with operator(setup, kube.namespace):
        canary_started(kube, 2)
        kube.patch_spec(paused=True)
        paused = kube.wait_status("paused", lambda s: s.get("phase") == c.PHASE_PAUSED)
        assert "holds at step 1/2" in paused["message"]
        write_traffic(store, "1", 100, EVEN, seed=10)
        write_traffic(store, "2", 100, EVEN, seed=11)
        seen = paused["canary"]["updatedAt"]
        for _ in range(2):  # two more polls while paused: the data is there, the step holds
            seen = kube.wait_status(
                "another poll", lambda s, last=seen: s["canary"]["updatedAt"] != last
            )["canary"]["updatedAt"]
        status = kube.status()
        assert status["phase"] == c.PHASE_PAUSED and status["canary"]["step"] == 1
        assert canary_deployment(kube).spec.replicas == 1

        kube.patch_spec(paused=False)
        kube.wait_status("step 2 once resumed", at_step(2))

        kube.patch_spec(rollout={**ROLLOUT, "minPredictions": 50})  # new settings: step 1 again
        status = kube.wait_status("the restart", at_step(1))
        assert status["canary"]["version"] == "2"
        wait_for("a CanaryRestarted event", lambda: c.REASON_CANARY_RESTARTED in kube.events())

        kube.patch_spec(version=3)  # another version: this canary is cancelled, a new one runs
        status = kube.wait_status(
            "the canary of version 3",
            lambda s: (s.get("canary") or {}).get("version") == "3" and at_step(1)(s),
        )
        assert status["canaryResult"] == {
            **status["canaryResult"],
            "version": "2",
            "outcome": "Cancelled",
        }
        assert "asks for version 3" in status["canaryResult"]["reason"]
        assert (
            canary_deployment(kube).spec.template.metadata.annotations[c.MODEL_VERSION_ANNOTATION]
            == "3"
        )
        assert c.REASON_CANARY_CANCELLED in kube.events()
        cancelled = rollout_run(kube, "2")  # no verdict: the run ends, the version is not tagged
        assert cancelled.info.status == "KILLED"
        assert cancelled.data.tags[tags.CANARY_OUTCOME] == tags.OUTCOME_CANCELLED
        version = kube.registry.get_model_version(MODEL_NAME, "2")
        assert version.tags.get(tags.CANARY_OUTCOME) != tags.OUTCOME_CANCELLED
        assert registered_aliases(kube.registry, MODEL_NAME)[ALIAS_CHAMPION] == "1"
        release(kube)
    # Its owner is gone: Kubernetes' garbage collector removes the canary left in flight.
    wait_for("the canary Deployment collected", lambda: canary_deployment(kube) is None)


def test_a_challenger_is_canaried_and_promoted_to_champion(
    setup: dict[str, Any], kube: Cluster
) -> None:
    store: EventStore = setup["store"]
    with operator(setup, kube.namespace):
        serving_on_three_replicas(kube, canaryOnChallenger=True, steps=[50])
        kube.registry.set_registered_model_alias(MODEL_NAME, ALIAS_CHALLENGER, "2")
        status = kube.wait_status("the challenger's canary", at_step(1))
        assert status["canary"]["source"] == c.SOURCE_CHALLENGER
        write_traffic(store, "1", 100, EVEN, seed=12)
        write_traffic(store, "2", 100, EVEN, seed=13)
        kube.wait_status(
            "the promotion", lambda s: (s.get("canaryResult") or {}).get("outcome") == "Promoted"
        )
        aliases = registered_aliases(kube.registry, MODEL_NAME)
        assert aliases[ALIAS_CHAMPION] == "2" and aliases[ALIAS_PREVIOUS_CHAMPION] == "1"
        assert ALIAS_CHALLENGER not in aliases  # promoted: the challenger is champion now
        kube.wait_status("version 2 pinned", lambda s: s.get("servingVersion") == "2")
        release(kube)


def test_a_canary_of_a_version_that_does_not_exist_is_an_error_and_starts_nothing(
    setup: dict[str, Any], kube: Cluster
) -> None:
    with operator(setup, kube.namespace):
        serving_on_three_replicas(kube)
        generation = kube.patch_spec(version=99)
        status = kube.wait_status(
            "phase Error",
            lambda s: s.get("phase") == c.PHASE_ERROR and s["observedGeneration"] == generation,
        )
        assert "version 99" in status["message"]
        assert canary_deployment(kube) is None and not status.get("canary")
        experiment = kube.registry.get_experiment_by_name(ROLLOUT_EXPERIMENT)
        runs = kube.registry.search_runs(
            [experiment.experiment_id] if experiment else [],
            f"tags.`{tags.CANARY_RESOURCE}` = '{kube.namespace}/model'",
        )
        assert runs == []
        kube.patch_spec(version=None)  # back to following the alias (3 pods that never start)
        kube.wait_status("no error", lambda s: s.get("phase") == c.PHASE_ROLLING_OUT)
        assert kube.pinned() == (URI.format(1), "1")
        release(kube)
