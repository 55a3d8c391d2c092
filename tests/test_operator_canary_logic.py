"""Canary rollouts without a cluster: ``spec.rollout``, the analysis of a step (each check
alone, waiting for data, failing fast), the plan and step decisions, the canary Deployment."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
import yaml

from artpulse_contract.constants import MODEL_URI_ENV
from artpulse_contract.events.outcomes import OutcomeTotals, latency_bucket
from artpulse_contract.events.schema import LATENCY_BUCKETS
from artpulse_contract.events.version_window import VersionWindow
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
from artpulse_operator.rollout_spec import MAX_STEPS, RolloutSpec, Thresholds
from artpulse_operator.spec import InvalidSpec, parse_spec

NOW = "2026-11-28T12:00:00.000000Z"
URI = "models:/artpulse-classifier/{}"
UID = "resource-uid"
CANARY_SPEC = {"version": 3, "rollout": {"strategy": "Canary", "steps": [10, 50, 100]}}
ROLLOUT = RolloutSpec(min_predictions=100, min_requests=100, min_step_seconds=60)


def window(
    predictions: int = 1000,
    labels: tuple[float, ...] = (0.2, 0.2, 0.2, 0.2, 0.2),
    top: float = 0.8,
    requests: int = 1000,
    errors: int = 0,
    latency: float = 0.010,
) -> VersionWindow:
    """One side's events over a step: label counts in the given proportions."""
    counts = tuple(round(predictions * share) for share in labels)
    histogram = [0] * LATENCY_BUCKETS
    histogram[latency_bucket(latency)] = requests - errors
    outcomes = OutcomeTotals(requests - errors, errors, tuple(histogram))
    return VersionWindow("v", sum(counts), counts, top * sum(counts), outcomes)


def verdicts(result: a.StepAnalysis) -> dict[str, str]:
    return {metric.name: metric.verdict for metric in result.metrics}


# --- spec.rollout ------------------------------------------------------------------------


def test_rollout_defaults_are_todays_rolling_update() -> None:
    rollout = parse_spec({}).rollout
    assert rollout == RolloutSpec()
    assert rollout.strategy == "Rolling" and not rollout.is_canary
    assert rollout.steps == (10, 50, 100) and rollout.canary_steps == (10, 50)


def test_rollout_is_parsed_with_its_thresholds() -> None:
    spec = parse_spec(
        {
            "rollout": {
                "strategy": "Canary",
                "steps": [5, 20],
                "minPredictions": 10,
                "minRequests": 20,
                "minStepSeconds": 0,
                "canaryOnChallenger": True,
                "analysis": {"maxLatencyRatio": 2, "labelDistance": 0.2, "significance": 0.05},
            }
        }
    )
    rollout = spec.rollout
    assert rollout.is_canary and rollout.canary_steps == (5, 20) and rollout.canary_on_challenger
    assert (rollout.min_predictions, rollout.min_requests, rollout.min_step_seconds) == (10, 20, 0)
    assert rollout.thresholds == Thresholds(
        max_latency_ratio=2.0, label_distance=0.2, significance=0.05
    )


@pytest.mark.parametrize(
    ("rollout", "named"),
    [
        ({"strategy": "BlueGreen"}, "spec.rollout.strategy must be one of"),
        ({"steps": [50, 10]}, "spec.rollout.steps must increase"),
        ({"steps": [100]}, "at least one share below 100"),
        ({"steps": [0, 50]}, "whole percentages from 1 to 100"),
        ({"steps": []}, "a list of 1 to 10 percentages"),
        ({"minPredictions": 0}, "spec.rollout.minPredictions must be between 1"),
        ({"minStepSeconds": 1.5}, "spec.rollout.minStepSeconds must be an integer"),
        ({"canaryOnChallenger": "yes"}, "canaryOnChallenger must be true or false"),
        ({"analysis": {"maxLatencyRatio": 0.5}}, "maxLatencyRatio must be between 1"),
        ({"analysis": {"significance": 0}}, "significance must be above 0 and below 1"),
        ({"analysis": {"labelDistance": "far"}}, "labelDistance must be a number"),
    ],
)
def test_invalid_rollout_names_the_field_and_value(rollout: dict[str, Any], named: str) -> None:
    with pytest.raises(InvalidSpec, match=r"spec\.rollout") as caught:
        parse_spec({"rollout": rollout})
    assert named in str(caught.value)


def test_rollout_settings_key_changes_with_any_setting_only() -> None:
    base = RolloutSpec()
    assert base.settings_key() == RolloutSpec().settings_key()
    assert base.settings_key() != replace(base, min_step_seconds=1).settings_key()
    other = replace(base, thresholds=Thresholds(max_confidence_drop=0.2))
    assert base.settings_key() != other.settings_key()


# --- analysis: each check alone ----------------------------------------------------------


def test_a_canary_like_the_stable_version_passes_every_check() -> None:
    result = a.analyse_step(window(), window(), ROLLOUT, elapsed_seconds=60)
    assert result.verdict == a.PASS and set(verdicts(result).values()) == {a.PASS}


def test_error_rate_fails_on_a_significant_increase_only() -> None:
    failing = a.analyse_step(window(errors=50), window(errors=5), ROLLOUT, 60)
    assert verdicts(failing) == {
        "errorRate": a.FAIL,
        "latencyP95Ratio": a.PASS,
        "labelDistance": a.PASS,
        "confidenceDrop": a.PASS,
    }
    assert failing.verdict == a.FAIL and "errorRate" in failing.message
    # Two errors in 100 requests against none: +2% is over the limit, but could be chance.
    noisy = a.error_rate_metric(window(requests=100, errors=2), window(requests=100), ROLLOUT)
    assert noisy.value == pytest.approx(0.02) and noisy.verdict == a.PASS
    # Within the limit however significant.
    within = a.error_rate_metric(window(errors=8), window(errors=0), ROLLOUT)
    assert within.verdict == a.PASS


def test_latency_fails_above_the_ratio_of_p95s() -> None:
    slow = a.analyse_step(window(latency=0.030), window(latency=0.010), ROLLOUT, 60)
    assert verdicts(slow)["latencyP95Ratio"] == a.FAIL
    assert {k: v for k, v in verdicts(slow).items() if k != "latencyP95Ratio"} == {
        "errorRate": a.PASS,
        "labelDistance": a.PASS,
        "confidenceDrop": a.PASS,
    }
    a_bit_slower = a.latency_metric(window(latency=0.012), window(latency=0.010), ROLLOUT)
    assert a_bit_slower.verdict == a.PASS and 1.0 < (a_bit_slower.value or 0) < 1.5


def test_labels_fail_when_the_shift_is_both_significant_and_material() -> None:
    shifted = (0.05, 0.05, 0.8, 0.05, 0.05)
    failing = a.analyse_step(window(labels=shifted), window(), ROLLOUT, 60)
    assert verdicts(failing)["labelDistance"] == a.FAIL
    assert [m.name for m in failing.failed] == ["labelDistance"]
    # Material but on 100 predictions a side with a strict significance: could be chance.
    strict = replace(ROLLOUT, thresholds=Thresholds(significance=1e-30))
    small = a.label_metric(window(100, shifted), window(100), strict)
    assert (small.value or 0) >= 0.1 and small.verdict == a.PASS
    # Significant on a million predictions, but negligible.
    slight = (0.21, 0.2, 0.2, 0.2, 0.19)
    large = a.label_metric(window(10**6, slight), window(10**6), ROLLOUT)
    assert (large.value or 1) < 0.1 and large.verdict == a.PASS


def test_confidence_fails_when_the_canary_is_less_sure() -> None:
    unsure = a.analyse_step(window(top=0.6), window(top=0.8), ROLLOUT, 60)
    assert [m.name for m in unsure.failed] == ["confidenceDrop"]
    assert unsure.failed[0].value == pytest.approx(0.2)
    surer = a.confidence_metric(window(top=0.95), window(top=0.8), ROLLOUT)
    assert surer.verdict == a.PASS


def test_too_little_data_waits_check_by_check() -> None:
    few_predictions = a.analyse_step(window(predictions=50), window(), ROLLOUT, 600)
    assert few_predictions.verdict == a.WAIT
    assert verdicts(few_predictions) == {
        "errorRate": a.PASS,
        "latencyP95Ratio": a.PASS,
        "labelDistance": a.WAIT,
        "confidenceDrop": a.WAIT,
    }
    assert "50 of 100 predictions" in few_predictions.message
    few_requests = a.analyse_step(window(), window(requests=20), ROLLOUT, 600)
    assert verdicts(few_requests)["errorRate"] == a.WAIT
    assert verdicts(few_requests)["latencyP95Ratio"] == a.WAIT
    assert few_requests.verdict == a.WAIT


def test_a_step_passes_only_after_its_minimum_time() -> None:
    early = a.analyse_step(window(), window(), ROLLOUT, elapsed_seconds=59)
    assert early.verdict == a.WAIT and "59 of 60 s" in early.message
    assert a.analyse_step(window(), window(), ROLLOUT, elapsed_seconds=60).verdict == a.PASS


def test_a_clear_regression_fails_fast_before_the_minimum_time_and_other_data() -> None:
    result = a.analyse_step(window(errors=500), window(predictions=10), ROLLOUT, 1)
    assert result.verdict == a.FAIL
    assert verdicts(result)["labelDistance"] == a.WAIT


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


def test_crd_rollout_schema_agrees_with_the_operator() -> None:
    crd = yaml.safe_load((Path(__file__).parents[1] / "manifests" / "crd.yaml").read_text())
    (version,) = crd["spec"]["versions"]
    schema = version["schema"]["openAPIV3Schema"]["properties"]
    rollout = schema["spec"]["properties"]["rollout"]["properties"]
    defaults = RolloutSpec()
    assert rollout["strategy"]["enum"] == list(c.STRATEGIES)
    assert rollout["strategy"]["default"] == defaults.strategy
    assert rollout["steps"]["default"] == list(defaults.steps)
    assert rollout["steps"]["maxItems"] == MAX_STEPS
    assert rollout["canaryOnChallenger"]["default"] == defaults.canary_on_challenger
    for key, attribute in (
        ("minPredictions", "min_predictions"),
        ("minRequests", "min_requests"),
        ("minStepSeconds", "min_step_seconds"),
    ):
        assert rollout[key]["default"] == getattr(defaults, attribute), key
    analysis = rollout["analysis"]["properties"]
    assert {key: analysis[key]["default"] for key in analysis} == {
        "maxErrorRateIncrease": defaults.thresholds.max_error_rate_increase,
        "maxLatencyRatio": defaults.thresholds.max_latency_ratio,
        "labelDistance": defaults.thresholds.label_distance,
        "maxConfidenceDrop": defaults.thresholds.max_confidence_drop,
        "significance": defaults.thresholds.significance,
    }
    status = schema["status"]["properties"]
    verdicts = status["canary"]["properties"]["analysis"]["properties"]["verdict"]["enum"]
    assert verdicts == list(a.VERDICTS)
    outcomes = status["canaryResult"]["properties"]["outcome"]["enum"]
    assert outcomes == [PROMOTED, ABORTED, CANCELLED]
    columns = {col["name"]: col["jsonPath"] for col in version["additionalPrinterColumns"]}
    assert columns["Step"] == ".status.canary.step"
    assert columns["Share"] == ".status.canary.share"
