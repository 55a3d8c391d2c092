"""Controlling a canary through the ``ArtPulseModel`` on a real API server, registry and event
store (``support.canary_plugin``): pausing holds it, spec edits restart or cancel it, a
challenger is canaried and promoted, and a version that does not exist starts nothing.
"""

from __future__ import annotations

from typing import Any

import pytest

from artpulse_contract.constants import (
    ALIAS_CHALLENGER,
    ALIAS_CHAMPION,
    ALIAS_PREVIOUS_CHAMPION,
    MODEL_NAME,
    ROLLOUT_EXPERIMENT,
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
    serving_on_three_replicas,
)
from support.canary_traffic import EVEN, write_traffic
from support.operator_session import Cluster
from support.polling import wait_for

pytest_plugins = ["support.canary_plugin"]
pytestmark = [pytest.mark.k8s, pytest.mark.slow]


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
