"""Canary outcomes decided by the operator on a real API server (local-cluster), a real SQLite
MLflow registry and a real event store the tests write live traffic into
(``support.canary_plugin``): a good canary stepped up and promoted, a bad one aborted and not
retried until its spec changes, and an operator restart resumed from the status. Pausing, spec
edits and where a canary starts from are ``test_operator_canary_control.py``'s.

Pods never start on this cluster (no kubelet): the traffic a canary is judged on is what the
test writes into the event store, as the runtime would record it (prediction events and
serving outcomes).
"""

from __future__ import annotations

from typing import Any

import pytest

from artpulse_contract.constants import (
    ALIAS_CHAMPION,
    ALIAS_PREVIOUS_CHAMPION,
    MODEL_NAME,
    MODEL_URI_ENV,
)
from artpulse_contract.events import EventStore
from artpulse_contract.registry import tags
from artpulse_contract.registry.lookups import registered_aliases
from artpulse_operator import constants as c
from support.canary_cluster import (
    ROLLOUT,
    URI,
    at_step,
    canary_deployment,
    canary_started,
    operator,
    release,
    rollout_run,
)
from support.canary_traffic import EVEN, SHIFTED, write_traffic
from support.operator_session import Cluster
from support.polling import wait_for

pytest_plugins = ["support.canary_plugin"]
pytestmark = [pytest.mark.k8s, pytest.mark.slow]


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
        # kopf posts events in the background: let it post this one before it stops.
        wait_for("a CanaryStarted event", lambda: c.REASON_CANARY_STARTED in kube.events())
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
