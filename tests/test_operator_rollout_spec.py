"""``spec.rollout`` without a cluster: defaults, parsing and its errors, the settings key, and
the CRD's rollout schema agreeing with the operator."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
import yaml

from artpulse_operator import analysis as a
from artpulse_operator import constants as c
from artpulse_operator.canary_memory import (
    ABORTED,
    CANCELLED,
    PROMOTED,
)
from artpulse_operator.rollout_spec import MAX_STEPS, RolloutSpec, Thresholds
from artpulse_operator.spec import InvalidSpec, parse_spec

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
