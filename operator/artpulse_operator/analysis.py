"""Canary analysis as plain functions: one step's verdict from the candidate's and the stable
version's events over the same window.

Four checks, each on its own data:

- ``errorRate``: server-error rate of the canary minus the stable one (4xx are not counted);
  a regression when above ``maxErrorRateIncrease`` AND Fisher's exact test says the canary
  errs more often (p below ``significance``), so one unlucky error in a small sample is not
  one; needs ``minRequests`` requests per side;
- ``latencyP95Ratio``: canary p95 latency over the stable p95 (answered requests); a
  regression above ``maxLatencyRatio``; needs ``minRequests`` answered requests per side;
- ``labelDistance``: Jensen-Shannon distance between the predicted-label distributions; a
  regression when the chi-square test rejects at ``significance`` AND the distance is at least
  ``labelDistance`` (drift's rule, from ``artpulse_contract.label_stats``); needs
  ``minPredictions`` predictions per side;
- ``confidenceDrop``: stable mean probability of the predicted label minus the canary's; a
  regression above ``maxConfidenceDrop``; needs ``minPredictions`` predictions per side.

A check without enough data waits. The step fails as soon as any check with enough data is a
regression (fail fast); it passes when every check has data and none regresses and
``minStepSeconds`` have gone by; otherwise it waits.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy import stats

from artpulse_contract.events.outcomes import latency_quantile
from artpulse_contract.events.version_window import VersionWindow
from artpulse_contract.label_stats import label_tests, labels_differ
from artpulse_operator.rollout_spec import RolloutSpec

PASS = "Pass"
FAIL = "Fail"
WAIT = "Wait"
VERDICTS = (PASS, FAIL, WAIT)

LATENCY_QUANTILE = 0.95


@dataclass(frozen=True, slots=True)
class Metric:
    """One check of a step: both sides' values, the compared value, its threshold, verdict."""

    name: str
    canary: float | None
    stable: float | None
    value: float | None
    threshold: float
    verdict: str
    message: str

    def to_status(self) -> dict[str, Any]:
        """The metric as it appears in ``status.canary.analysis.metrics``."""
        return {
            "name": self.name,
            "canary": self.canary,
            "stable": self.stable,
            "value": self.value,
            "threshold": self.threshold,
            "verdict": self.verdict,
            "message": self.message,
        }


@dataclass(frozen=True, slots=True)
class StepAnalysis:
    """The verdict of one step and the checks behind it."""

    verdict: str
    message: str
    metrics: tuple[Metric, ...]

    def to_status(self) -> dict[str, Any]:
        """``status.canary.analysis``."""
        return {
            "verdict": self.verdict,
            "message": self.message,
            "metrics": [metric.to_status() for metric in self.metrics],
        }

    @property
    def failed(self) -> tuple[Metric, ...]:
        """The checks that found a regression."""
        return tuple(m for m in self.metrics if m.verdict == FAIL)


def _waiting(name: str, threshold: float, what: str, have: int, need: int) -> Metric:
    return Metric(name, None, None, None, threshold, WAIT, f"{have} of {need} {what}")


def _enough(canary: int, stable: int, need: int) -> int | None:
    """The smaller count when a side has fewer than ``need``, else None."""
    fewer = min(canary, stable)
    return fewer if fewer < need else None


def error_rate_metric(canary: VersionWindow, stable: VersionWindow, rollout: RolloutSpec) -> Metric:
    """``errorRate``: the canary's server-error rate minus the stable one, with Fisher's test."""
    limit = rollout.thresholds.max_error_rate_increase
    c, s = canary.outcomes, stable.outcomes
    short = _enough(c.requests, s.requests, rollout.min_requests)
    if short is not None:
        return _waiting("errorRate", limit, "requests", short, rollout.min_requests)
    canary_rate, stable_rate = c.server_errors / c.requests, s.server_errors / s.requests
    increase = canary_rate - stable_rate
    table = [[c.server_errors, c.answered], [s.server_errors, s.answered]]
    p_value = float(stats.fisher_exact(table, alternative="greater").pvalue)
    significant = p_value < rollout.thresholds.significance
    failed = increase > limit and significant
    message = (
        f"server errors {canary_rate:.2%} vs {stable_rate:.2%} (+{increase:.2%}, limit "
        f"+{limit:.2%}; Fisher p={p_value:.3g})"
    )
    return Metric("errorRate", canary_rate, stable_rate, increase, limit, _verdict(failed), message)


def latency_metric(canary: VersionWindow, stable: VersionWindow, rollout: RolloutSpec) -> Metric:
    """``latencyP95Ratio``: the canary's p95 latency over the stable one."""
    limit = rollout.thresholds.max_latency_ratio
    c, s = canary.outcomes, stable.outcomes
    short = _enough(c.answered, s.answered, rollout.min_requests)
    if short is not None:
        return _waiting("latencyP95Ratio", limit, "answered requests", short, rollout.min_requests)
    canary_p95 = latency_quantile(c.latency_counts, LATENCY_QUANTILE) or 0.0
    stable_p95 = latency_quantile(s.latency_counts, LATENCY_QUANTILE) or 0.0
    ratio = canary_p95 / stable_p95 if stable_p95 > 0 else 1.0
    message = (
        f"p95 latency {canary_p95 * 1000:.1f} ms vs {stable_p95 * 1000:.1f} ms "
        f"(x{ratio:.2f}, limit x{limit:g})"
    )
    failed = ratio > limit
    return Metric(
        "latencyP95Ratio", canary_p95, stable_p95, ratio, limit, _verdict(failed), message
    )


def label_metric(canary: VersionWindow, stable: VersionWindow, rollout: RolloutSpec) -> Metric:
    """``labelDistance``: the predicted-label distributions, compared as drift compares them."""
    limit = rollout.thresholds.label_distance
    canary_counts, stable_counts = np.array(canary.label_counts), np.array(stable.label_counts)
    short = _enough(int(canary_counts.sum()), int(stable_counts.sum()), rollout.min_predictions)
    if short is not None:
        return _waiting("labelDistance", limit, "predictions", short, rollout.min_predictions)
    _, p_value, distance = label_tests(stable_counts, canary_counts)
    failed = labels_differ(p_value, distance, rollout.thresholds.significance, limit)
    message = (
        f"Jensen-Shannon distance {distance:.3f} (regression at >= {limit:g} with chi-square "
        f"p < {rollout.thresholds.significance:g}; p={p_value:.3g})"
    )
    return Metric("labelDistance", None, None, distance, limit, _verdict(failed), message)


def confidence_metric(canary: VersionWindow, stable: VersionWindow, rollout: RolloutSpec) -> Metric:
    """``confidenceDrop``: how much less sure of its predictions the canary is."""
    limit = rollout.thresholds.max_confidence_drop
    short = _enough(canary.predictions, stable.predictions, rollout.min_predictions)
    canary_mean, stable_mean = canary.mean_top_probability, stable.mean_top_probability
    if short is not None or canary_mean is None or stable_mean is None:
        return _waiting("confidenceDrop", limit, "predictions", short or 0, rollout.min_predictions)
    drop = stable_mean - canary_mean
    message = (
        f"mean top probability {canary_mean:.3f} vs {stable_mean:.3f} "
        f"(drop {drop:+.3f}, limit {limit:g})"
    )
    verdict = _verdict(drop > limit)
    return Metric("confidenceDrop", canary_mean, stable_mean, drop, limit, verdict, message)


def _verdict(failed: bool) -> str:
    return FAIL if failed else PASS


CHECKS: tuple[Callable[[VersionWindow, VersionWindow, RolloutSpec], Metric], ...] = (
    error_rate_metric,
    latency_metric,
    label_metric,
    confidence_metric,
)


def analyse_step(
    canary: VersionWindow, stable: VersionWindow, rollout: RolloutSpec, elapsed_seconds: float
) -> StepAnalysis:
    """The verdict of a step that has run ``elapsed_seconds``, from both sides' windows."""
    metrics = tuple(check(canary, stable, rollout) for check in CHECKS)
    failed = [m for m in metrics if m.verdict == FAIL]
    if failed:
        reasons = "; ".join(f"{m.name}: {m.message}" for m in failed)
        return StepAnalysis(FAIL, f"regression: {reasons}", metrics)
    waiting = [f"{m.name} ({m.message})" for m in metrics if m.verdict == WAIT]
    if elapsed_seconds < rollout.min_step_seconds:
        waiting.append(f"{elapsed_seconds:.0f} of {rollout.min_step_seconds} s")
    if waiting:
        return StepAnalysis(WAIT, "waiting for " + ", ".join(waiting), metrics)
    return StepAnalysis(PASS, "no regression: " + "; ".join(m.message for m in metrics), metrics)
