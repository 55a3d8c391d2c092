"""Step 7 of the e2e: a canary on real pods, analysed on the events and serving outcomes the
runtime pods write, under steady traffic through the Service, then promoted.

The thresholds are wide on purpose: versions 2 and 3 are two real trainings whose predictions
on the five sample images may differ, and this step shows the canary machinery on pods (a
canary pod behind the same Service, both versions answering, their events and outcomes
compared, the alias moved, the serving Deployment rolled, the canary removed); the checks
themselves are tested one by one in ``tests/test_operator_canary_logic.py`` and
``tests/test_operator_canary.py``.
"""

from __future__ import annotations

import json
import time
from typing import Any

from artpulse_contract.constants import (
    ALIAS_CHAMPION,
    ALIAS_PREVIOUS_CHAMPION,
    MODEL_NAME,
    ROLLOUT_EXPERIMENT,
)
from artpulse_contract.registry import tags
from artpulse_operator.constants import CANARY_SUFFIX, TRACK_CANARY, TRACK_LABEL
from support.e2e_cluster import is_ready
from support.e2e_lifecycle import RESOURCE, ROLLOUT_TIMEOUT, Lifecycle
from support.e2e_platform import RUNTIME
from support.e2e_serving import answered_version, wait_all_serving, wait_events_stored
from support.polling import wait_for

CANARY_ROLLOUT = {
    "strategy": "Canary",
    "steps": [25, 100],
    "minPredictions": 50,
    "minRequests": 50,
    "minStepSeconds": 20,
    "analysis": {
        "maxErrorRateIncrease": 1.0,
        "maxLatencyRatio": 1000,
        "labelDistance": 1.0,
        "maxConfidenceDrop": 1.0,
    },
}
"""One step: with 2 stable replicas, 25% asked is 1 canary pod (a third of the traffic)."""


def _patch_spec(life: Lifecycle, spec: dict[str, Any]) -> None:
    life.cluster.kubectl("patch", RESOURCE, "--type=merge", "-p", json.dumps({"spec": spec}))


def _canary_pod_version(life: Lifecycle) -> str | None:
    """The version the ready canary pod answers with (asked directly), or None."""
    selector = f"app.kubernetes.io/name={RUNTIME},{TRACK_LABEL}={TRACK_CANARY}"
    ready = [pod for pod in life.cluster.items("pod", selector) if is_ready(pod)]
    return answered_version(ready[0]["status"]["podIP"]) if ready else None


def _promoted(life: Lifecycle) -> dict[str, Any] | None:
    status = life.resource_status()
    result = status.get("canaryResult")
    return status if isinstance(result, dict) and result.get("outcome") == "Promoted" else None


def canary_on_real_pods(life: Lifecycle) -> None:
    """Run step 7 (after step 6: 2 runtime pods serve version 3)."""
    cluster, registry, steps = life.cluster, life.registry, life.steps
    with steps.step("step 7a: spec.version 3, the alias follows the pods again"):
        life.promote_resource(3)
        life.wait_phase("Serving", "3")
    with steps.step("step 7b: a canary of version 2 on a real pod, under traffic, promoted"):
        traffic = life.traffic().start()
        start = time.monotonic()
        _patch_spec(life, {"version": 2, "rollout": CANARY_ROLLOUT})
        wait_for("the canary pod to serve version 2",
                 lambda: _canary_pod_version(life) == "2", ROLLOUT_TIMEOUT, 1.0)  # fmt: skip
        steps.note(f"edit -> canary pod serves version 2: {time.monotonic() - start:.0f} s")
        status = wait_for("the canary promoted", lambda: _promoted(life), ROLLOUT_TIMEOUT, 1.0)
        steps.note(f"edit -> canary passed and promoted: {time.monotonic() - start:.0f} s")
        seconds = wait_all_serving(cluster, "2", ROLLOUT_TIMEOUT)
        steps.note(f"promotion -> every pod serves version 2: {seconds:.0f} s")
        outcomes = traffic.stop()
    life.record(outcomes)
    failed = [o for o in outcomes if not o.ok]
    assert not failed, failed[:5]
    answered = {o.model_version for o in outcomes}
    assert {"2", "3"} <= answered, answered  # both sides answered through the one Service
    steps.note(f"{len(outcomes)} requests during the canary, none failed; versions {answered}")
    assert status["canaryResult"]["version"] == "2"
    assert (registry.alias(ALIAS_CHAMPION), registry.alias(ALIAS_PREVIOUS_CHAMPION)) == ("2", "3")
    canaries = cluster.items("deployment", f"{TRACK_LABEL}={TRACK_CANARY}")
    assert not canaries, f"{RUNTIME}{CANARY_SUFFIX} left after the promotion"
    experiment = registry.client.get_experiment_by_name(ROLLOUT_EXPERIMENT)
    assert experiment is not None
    (run,) = registry.client.search_runs(
        [experiment.experiment_id], f"tags.`{tags.CANDIDATE_VERSION}` = '2'"
    )
    assert run.info.status == "FINISHED", run.info
    # Every check had data from the pods: the latency and error rate come from the serving
    # outcomes the runtime pods wrote, labels and confidence from their prediction events.
    compared = set(run.data.metrics)
    assert {"error_rate_increase", "latency_p95_ratio", "label_js_distance",
            "confidence_drop"} <= compared, compared  # fmt: skip
    version = registry.client.get_model_version(MODEL_NAME, "2")
    assert version.tags[tags.CANARY_OUTCOME] == tags.OUTCOME_PROMOTED
    wait_events_stored(life.events_url, life.answered, timeout=120)
