"""Canary rollouts without a cluster: the canary Deployment, the plan and the step decisions."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import pytest

from artpulse_contract.constants import MODEL_URI_ENV
from artpulse_operator import analysis as a
from artpulse_operator import canary as plan
from artpulse_operator import constants as c
from artpulse_operator.canary_deployment import (
    canary_body,
    canary_replicas,
    realised_share,
    view_canary,
)
from artpulse_operator.canary_memory import (
    ABORTED,
    CANCELLED,
    PROMOTED,
    Canary,
    CanaryMemory,
    CanaryResult,
)
from artpulse_operator.deployment import strategy_patch, view_deployment
from artpulse_operator.reconcile import Memory, decide
from artpulse_operator.spec import parse_spec

NOW = "2026-11-28T12:00:00.000000Z"
URI = "models:/artpulse-classifier/{}"
UID = "resource-uid"
CANARY_SPEC = {"version": 3, "rollout": {"strategy": "Canary", "steps": [10, 50, 100]}}


# --- the canary Deployment ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("stable", "share", "replicas", "realised"),
    [
        (3, 10, 1, 25),  # the smallest share with 3 stable replicas: 1/(3+1)
        (9, 10, 1, 10),
        (10, 25, 3, 23),
        (4, 50, 4, 50),
        (4, 90, 4, 50),  # never more replicas than the stable side
        (0, 10, 1, 100),
    ],
)
def test_shares_are_realised_by_replica_ratio(
    stable: int, share: int, replicas: int, realised: int
) -> None:
    assert canary_replicas(stable, share) == replicas
    assert realised_share(stable, replicas) == realised


def serving(
    version: str = "1", replicas: int = 3, strategy: str = "RollingUpdate", **status: Any
) -> dict[str, Any]:
    """A serving Deployment as the API returns it."""
    labels = {"app.kubernetes.io/name": "artpulse-runtime"}
    return {
        "metadata": {"name": "artpulse-runtime", "generation": 2, "labels": labels},
        "spec": {
            "replicas": replicas,
            "progressDeadlineSeconds": 600,
            "strategy": {"type": strategy},
            "selector": {"matchLabels": labels},
            "template": {
                "metadata": {
                    "labels": labels,
                    "annotations": {c.MODEL_VERSION_ANNOTATION: version, "keep": "me"},
                },
                "spec": {
                    "containers": [
                        {"name": "sidecar"},
                        {
                            "name": "runtime",
                            "image": "runtime:1",
                            "env": [
                                {"name": "OTHER", "value": "x"},
                                {"name": MODEL_URI_ENV, "value": URI.format(version)},
                            ],
                        },
                    ]
                },
            },
        },
        "status": {
            "observedGeneration": 2,
            "replicas": replicas,
            "updatedReplicas": replicas,
            "availableReplicas": replicas,
            **status,
        },
    }


OWNER = {"metadata": {"name": "model", "namespace": "ns", "uid": UID}}


def test_canary_body_is_the_serving_template_pinned_and_tracked() -> None:
    view = view_deployment(serving(), "runtime")
    body = canary_body(view, "runtime", "artpulse-classifier", "3", 2, OWNER)
    assert body["metadata"]["name"] == "artpulse-runtime-canary"
    assert body["metadata"]["ownerReferences"] == [
        {
            "apiVersion": c.API_VERSION,
            "kind": c.KIND,
            "name": "model",
            "uid": UID,
            "controller": True,
        }
    ]
    spec = body["spec"]
    assert spec["replicas"] == 2 and spec["progressDeadlineSeconds"] == 600
    track = {c.TRACK_LABEL: c.TRACK_CANARY}
    assert spec["selector"]["matchLabels"] == {
        "app.kubernetes.io/name": "artpulse-runtime",
        **track,
    }
    assert spec["template"]["metadata"]["labels"] == spec["selector"]["matchLabels"]
    assert spec["template"]["metadata"]["annotations"] == {
        c.MODEL_VERSION_ANNOTATION: "3",
        "keep": "me",
    }
    runtime = spec["template"]["spec"]["containers"][1]
    assert runtime["env"] == [
        {"name": "OTHER", "value": "x"},
        {"name": MODEL_URI_ENV, "value": URI.format(3)},
    ]
    # The serving Deployment's own body is left as it was.
    assert (
        view.body["spec"]["template"]["metadata"]["annotations"][c.MODEL_VERSION_ANNOTATION] == "1"
    )
    found = view_canary(body | {"status": {}}, "runtime")
    assert found.owned_by(UID) and not found.owned_by("another")
    assert found.view.served_version("artpulse-classifier") == "3"


def test_strategy_patch_sets_recreate_and_back_only_when_it_differs() -> None:
    rolling = view_deployment(serving(), "runtime")
    recreate = view_deployment(serving(strategy="Recreate"), "runtime")
    assert strategy_patch("Recreate", rolling) == {
        "spec": {"strategy": {"type": "Recreate", "rollingUpdate": None}}
    }
    assert strategy_patch("Recreate", recreate) == {}
    assert strategy_patch("Rolling", rolling) == {}
    assert strategy_patch("Canary", recreate) == {"spec": {"strategy": {"type": "RollingUpdate"}}}


def test_a_recreate_rollout_pins_with_the_recreate_strategy() -> None:
    spec = parse_spec({"rollout": {"strategy": "Recreate"}})
    decision = decide(spec, Memory(), 1, "2", view_deployment(serving(), "runtime"), NOW)
    assert decision.patch is not None
    assert decision.patch["spec"]["strategy"] == {"type": "Recreate", "rollingUpdate": None}
    assert "with strategy Recreate" in decision.message


# --- planning ----------------------------------------------------------------------------


def canary(step: int = 0, **changes: Any) -> Canary:
    spec = parse_spec(CANARY_SPEC)
    return replace(
        plan.new_canary(spec, "3", c.SOURCE_SPEC_VERSION, "1", NOW, "run"), step=step, **changes
    )


NOTHING = CanaryMemory()


def planned(raw: dict[str, Any], memory: CanaryMemory = NOTHING, **kw: Any) -> plan.Plan:
    args = {"generation": 2, "desired": "1", "challenger": None, "served": "1", "settled": True}
    args.update(kw)
    return plan.plan_canary(
        parse_spec(raw),
        memory,
        args["generation"],
        args["desired"],
        args["challenger"],
        args["served"],
        args["settled"],
    )


def test_a_canary_starts_for_spec_version_once_serving_is_settled() -> None:
    assert planned(CANARY_SPEC) == plan.Plan(plan.START, "3", c.SOURCE_SPEC_VERSION)
    assert planned(CANARY_SPEC, settled=False).action == plan.WAIT_FOR_SERVING
    assert planned(CANARY_SPEC, served="2").action == plan.WAIT_FOR_SERVING
    assert planned({"version": 3}).action == plan.IDLE  # Rolling: promoted as before
    assert planned(CANARY_SPEC, desired="3").action == plan.IDLE  # the alias names it already


def test_challenger_canaries_only_when_asked_and_spec_version_wins() -> None:
    on_challenger = {"rollout": {"strategy": "Canary", "canaryOnChallenger": True}}
    assert planned(on_challenger, challenger="4") == plan.Plan(plan.START, "4", c.SOURCE_CHALLENGER)
    assert planned(on_challenger, challenger="1").action == plan.IDLE
    without = {"rollout": {"strategy": "Canary"}}
    assert planned(without, challenger="4").action == plan.IDLE
    both = {"version": 3, **on_challenger}
    assert planned(both, challenger="4").version == "3"


def test_an_aborted_version_waits_for_a_spec_edit() -> None:
    result = CanaryResult("3", ABORTED, "labels", NOW, generation=2)
    memory = CanaryMemory(result=result)
    blocked = planned(CANARY_SPEC, memory)
    assert blocked.action == plan.BLOCKED and "edit the resource" in blocked.message
    assert planned(CANARY_SPEC, memory, generation=3).action == plan.START
    cancelled = CanaryMemory(result=replace(result, outcome=CANCELLED))
    assert planned(CANARY_SPEC, cancelled).action == plan.START


def test_a_canary_in_flight_continues_restarts_or_is_cancelled() -> None:
    memory = CanaryMemory(canary=canary())
    assert planned(CANARY_SPEC, memory).action == plan.CONTINUE
    edited = {**CANARY_SPEC, "rollout": {**CANARY_SPEC["rollout"], "minStepSeconds": 5}}
    assert planned(edited, memory).action == plan.RESTART
    paused = {**CANARY_SPEC, "paused": True, "pollIntervalSeconds": 30}
    assert planned(paused, memory).action == plan.CONTINUE  # pausing is the cycle's
    for raw, kw, why in (
        ({**CANARY_SPEC, "version": 4}, {}, "asks for version 4"),
        ({"version": 3}, {}, "strategy is now Rolling"),
        ({**CANARY_SPEC, "deployment": {"name": "other"}}, {}, "targets another"),
        (CANARY_SPEC, {"desired": "2"}, "moved from version 1 to 2"),
        (CANARY_SPEC, {"desired": "3"}, "moved to version 3 outside the canary"),
    ):
        decided = planned(raw, memory, **kw)
        assert decided.action == plan.CANCEL and why in decided.message, (raw, kw)


def test_memory_round_trips_through_the_status() -> None:
    memory = CanaryMemory(canary(step=1), CanaryResult("2", PROMOTED, "ok", NOW, 4))
    assert memory.canary is not None and memory.result is not None
    status = {"canary": memory.canary.to_status(), "canaryResult": memory.result.to_status()}
    assert CanaryMemory.from_status(status) == memory
    assert status["canary"]["step"] == 2  # 1-based for people
    assert CanaryMemory.from_status({}) == CanaryMemory()


# --- a step ------------------------------------------------------------------------------


def stepped(
    found: dict[str, Any] | None,
    analysis: a.StepAnalysis | None = None,
    step: int = 0,
    stable: int = 3,
) -> plan.StepDecision:
    view = None if found is None else view_canary(found, "runtime")
    return plan.decide_step(parse_spec(CANARY_SPEC), canary(step), view, analysis, stable, UID)


def canary_found(version: str = "3", replicas: int = 1, **status: Any) -> dict[str, Any]:
    body = canary_body(
        view_deployment(serving(), "runtime"),
        "runtime",
        "artpulse-classifier",
        version,
        replicas,
        OWNER,
    )
    return body | {"status": serving(replicas=replicas, **status)["status"]}


PASSED = a.StepAnalysis(a.PASS, "fine", ())
FAILED = a.StepAnalysis(a.FAIL, "regression: labels", ())
WAITING = a.StepAnalysis(a.WAIT, "waiting for data", ())
STALLED = {
    "conditions": [{"type": "Progressing", "status": "False", "reason": "ProgressDeadlineExceeded"}]
}


def test_the_canary_deployment_is_made_right_before_anything_is_analysed() -> None:
    assert stepped(None).action == plan.CREATE
    assert stepped(None).replicas == 1 and stepped(None).share == 25
    foreign = canary_found() | {"metadata": {**canary_found()["metadata"], "ownerReferences": []}}
    assert stepped(foreign, PASSED).action == plan.CANCEL
    assert stepped(canary_found(version="2"), PASSED).action == plan.RECREATE
    assert stepped(canary_found(replicas=2), PASSED).action == plan.SCALE
    stalled = stepped(canary_found(**STALLED), PASSED)
    assert stalled.action == plan.ABORT and "did not become available" in stalled.message


def test_the_analysis_decides_the_step() -> None:
    assert stepped(canary_found(), None).action == plan.WAIT
    assert stepped(canary_found(), WAITING).action == plan.WAIT
    assert stepped(canary_found(), FAILED).action == plan.ABORT
    assert stepped(canary_found(), PASSED).action == plan.ADVANCE
    last = stepped(canary_found(replicas=3), PASSED, step=1)
    assert last.action == plan.PROMOTE and last.share == 50
