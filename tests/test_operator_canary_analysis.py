"""Canary analysis without a cluster: each check alone, waiting for data, failing fast."""

from __future__ import annotations

from dataclasses import replace

import pytest

from artpulse_contract.events.outcomes import OutcomeTotals, latency_bucket
from artpulse_contract.events.schema import LATENCY_BUCKETS
from artpulse_contract.events.version_window import VersionWindow
from artpulse_operator import analysis as a
from artpulse_operator.rollout_spec import RolloutSpec, Thresholds

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
