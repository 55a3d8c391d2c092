"""Drift statistics and verdicts on synthetic windows (no registry, no event store)."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from pydantic import ValidationError
from scipy import stats

from artpulse_contract.constants import FEATURE_NAMES, LABELS
from artpulse_jobs.cli import main
from artpulse_jobs.monitoring.drift_html import write_html
from artpulse_jobs.monitoring.drift_report import (
    VERDICT_DRIFT,
    VERDICT_INSUFFICIENT,
    VERDICT_NO_DRIFT,
    DriftAccumulator,
    ReferenceData,
    build_report,
    write_json,
)
from artpulse_jobs.monitoring.drift_stats import (
    FeatureAccumulator,
    adjust_p_values,
    ks_p_value,
    population_stability_index,
)
from artpulse_jobs.monitoring.thresholds import DriftThresholds
from artpulse_jobs.training.reference import compute_reference_stats

BETA_SHAPES = ((2, 5), (3, 3), (5, 2), (2, 2), (1.5, 6))


def draw(rng: np.random.Generator, n: int) -> tuple[np.ndarray, np.ndarray]:
    """Features (n, 5) from fixed beta distributions and uniformly drawn label indices."""
    columns = [rng.beta(a, b, n) for a, b in BETA_SHAPES]
    return np.column_stack(columns).astype(np.float32), rng.integers(0, len(LABELS), n)


@pytest.fixture(scope="module")
def reference() -> ReferenceData:
    """Reference statistics of 3,000 training rows and a separate 600-row sample."""
    rng = np.random.default_rng(7)
    features, labels = draw(rng, 3000)
    sample, _ = draw(rng, 600)
    return ReferenceData(compute_reference_stats(features, labels), sample, "a test sample")


def evaluate(
    reference: ReferenceData, features: np.ndarray, labels: np.ndarray, chunk: int = 997
) -> dict:
    """Stream a window through the accumulator in chunks and build its report."""
    accumulator = DriftAccumulator(reference)
    for start in range(0, len(features), chunk):
        names = np.array([LABELS[i] for i in labels[start : start + chunk]], dtype=object)
        accumulator.update(features[start : start + chunk], names)
    return build_report(accumulator, reference, DriftThresholds(), {"model": {"version": "1"}})


def test_streamed_ks_statistic_equals_scipy_two_sample_ks_with_ties() -> None:
    rng = np.random.default_rng(3)
    for _ in range(50):
        ref = np.round(rng.random(int(rng.integers(1, 60))), 2)
        cur = np.round(rng.random(int(rng.integers(1, 400))) * rng.uniform(0.5, 1.5), 2)
        accumulator = FeatureAccumulator(ref, [0.0, 0.5, 1.0])
        for part in np.array_split(cur, 4):
            accumulator.update(part)
        expected = stats.ks_2samp(ref, cur, method="asymp")
        assert accumulator.ks_statistic() == pytest.approx(expected.statistic, abs=1e-12)
        p_value = ks_p_value(accumulator.ks_statistic(), ref.size, cur.size)
        assert p_value == pytest.approx(expected.pvalue, abs=1e-12)
        clipped = np.clip(cur, 0.0, 1.0)
        assert accumulator.wasserstein() == pytest.approx(
            stats.wasserstein_distance(clipped, ref), abs=5e-4 + 1e-12
        )


def test_psi_is_zero_for_equal_proportions_and_matches_the_formula() -> None:
    assert population_stability_index(np.array([10, 20, 30]), np.array([1, 2, 3])) == 0.0
    r, c = np.array([0.5, 0.5]), np.array([0.9, 0.1])
    expected = float(np.sum((c - r) * np.log(c / r)))
    assert population_stability_index(np.array([50, 50]), np.array([90, 10])) == pytest.approx(
        expected
    )


def test_holm_and_bonferroni_corrections() -> None:
    p = [0.01, 0.04, 0.03, 0.5, 0.001]
    assert adjust_p_values(p, "holm") == pytest.approx([0.04, 0.09, 0.09, 0.5, 0.005])
    assert adjust_p_values(p, "bonferroni") == pytest.approx([0.05, 0.2, 0.15, 1.0, 0.005])
    with pytest.raises(ValueError, match="'sidak'"):
        adjust_p_values(p, "sidak")


def test_identical_distribution_stays_quiet(reference: ReferenceData) -> None:
    features, labels = draw(np.random.default_rng(11), 20_000)
    report = evaluate(reference, features, labels)
    assert report["verdict"] == VERDICT_NO_DRIFT, report["summary"]
    assert report["drifted_features"] == []
    assert not report["labels"]["drifted"]
    assert report["counts"]["valid_events"] == 20_000


def test_one_shifted_feature_fires_for_that_feature_only(reference: ReferenceData) -> None:
    features, labels = draw(np.random.default_rng(12), 5_000)
    features[:, 1] = np.clip(features[:, 1] + 0.12, 0.0, 1.0)
    report = evaluate(reference, features, labels)
    assert report["verdict"] == VERDICT_DRIFT
    assert report["drifted_features"] == ["sat_mean"]
    shifted = report["features"]["sat_mean"]
    assert shifted["ks_p_adjusted"] < 0.01
    assert shifted["psi"] >= 0.2 or shifted["wasserstein_norm"] >= 0.1


def test_small_shift_on_a_large_window_is_significant_but_not_material() -> None:
    rng = np.random.default_rng(8)
    features, labels = draw(rng, 20_000)
    large = ReferenceData(compute_reference_stats(features, labels), draw(rng, 20_000)[0], "big")
    features, labels = draw(np.random.default_rng(13), 200_000)
    features[:, 0] = np.clip(features[:, 0] + 0.012, 0.0, 1.0)
    report = evaluate(large, features, labels, chunk=50_000)
    hue = report["features"]["hue_mean"]
    assert hue["ks_p_adjusted"] < 0.01
    assert hue["psi"] < 0.2 and hue["wasserstein_norm"] < 0.1
    assert report["verdict"] == VERDICT_NO_DRIFT


def test_label_shift_is_reported_on_labels(reference: ReferenceData) -> None:
    features, _ = draw(np.random.default_rng(14), 2_000)
    only_two = np.where(np.arange(2_000) % 2 == 0, 1, 4)  # neo-pop and vibrant only
    report = evaluate(reference, features, only_two)
    assert report["verdict"] == VERDICT_DRIFT
    assert report["labels"]["drifted"]
    assert report["labels"]["js_distance"] >= 0.1
    assert report["drifted_features"] == []


def test_too_few_events_is_insufficient_data(reference: ReferenceData) -> None:
    features, labels = draw(np.random.default_rng(15), 99)
    features[:, 2] = 1.0  # would be drift, but the window is too small to say
    report = evaluate(reference, features, labels)
    assert report["verdict"] == VERDICT_INSUFFICIENT
    assert "at least 100" in report["summary"]
    assert report["features"] == {}


def test_non_finite_rows_are_counted_and_skipped(reference: ReferenceData) -> None:
    features, labels = draw(np.random.default_rng(16), 150)
    features[:60, 3] = np.nan
    report = evaluate(reference, features, labels)
    assert report["counts"]["invalid_rows"] == 60
    assert report["verdict"] == VERDICT_INSUFFICIENT


def test_thresholds_reject_invalid_values() -> None:
    with pytest.raises(ValidationError, match=r"ks_alpha\n  Input should be less than 1"):
        DriftThresholds(ks_alpha=1.5)
    with pytest.raises(
        ValidationError, match="correction\n  Input should be 'holm' or 'bonferroni'"
    ):
        DriftThresholds(correction="fdr")  # type: ignore[arg-type]
    with pytest.raises(
        ValidationError, match="min_events\n  Input should be greater than or equal to 1"
    ):
        DriftThresholds(min_events=0)


@pytest.mark.parametrize(
    ("variable", "value", "problem"),
    [
        ("ARTPULSE_DRIFT_PSI_THRESHOLD", "-0.1", "Input should be greater than 0"),
        ("ARTPULSE_DRIFT_KS_ALPHA", "1", "Input should be less than 1"),
        ("ARTPULSE_DRIFT_WINDOW_HOURS", "0", "Input should be greater than 0"),
    ],
)
def test_a_drift_setting_out_of_bounds_stops_the_command_at_start_in_one_line(
    monkeypatch: pytest.MonkeyPatch, variable: str, value: str, problem: str
) -> None:
    monkeypatch.setenv(variable, value)
    result = CliRunner().invoke(main, ["drift"])
    assert result.exit_code == 1
    assert result.output == f"Error: invalid setting: {variable}={value!r}: {problem}\n"


def test_reports_are_json_and_self_contained_html(reference: ReferenceData, tmp_path: Path) -> None:
    features, labels = draw(np.random.default_rng(17), 1_000)
    features[:, 4] = np.clip(features[:, 4] * 0.5, 0.0, 1.0)
    report = evaluate(reference, features, labels)
    loaded = json.loads(write_json(report, tmp_path / "r.json").read_text())
    assert loaded["verdict"] == VERDICT_DRIFT
    assert set(loaded["features"]) == set(FEATURE_NAMES)
    assert sum(loaded["features"]["edges"]["histogram"]["current"]) == pytest.approx(1.0, 1e-3)
    html = write_html(report, tmp_path / "r.html").read_text()
    assert html.count("<svg") == len(FEATURE_NAMES) + 1
    assert not re.search(r"(src|href)=", html)
    assert "edges" in html and "drift" in html
