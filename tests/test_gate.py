"""The promotion gate's two rules, each tested alone and at its boundary.

A candidate passes when its macro F1 is at least ``min_macro_f1`` (the minimum) and at most
``max_regression`` below the champion's (the regression). Each case below breaks one rule
only, or sits exactly on a rule's boundary, so flipping either comparison in ``rules.decide``
turns a case red. The scores are binary fractions (0.75, 0.875, ...), so ``champion -
max_regression`` is exact and the boundaries are the boundaries, not rounding.
"""

from __future__ import annotations

import pytest
from click.testing import CliRunner
from pydantic import ValidationError

from artpulse_jobs.cli import main
from artpulse_jobs.promotion.rules import GateConfig, decide

BELOW = 2**-20
"""A step below a boundary, far larger than a float's rounding at these values."""


def test_a_candidate_under_the_minimum_is_refused_even_when_it_beats_the_champion() -> None:
    config = GateConfig(min_macro_f1=0.875, max_regression=0.0)
    decision = decide(0.75, 0.5, config)
    assert not decision.passed
    assert decision.reasons == [
        "macro F1 0.7500 < minimum 0.875",
        "macro F1 0.7500 >= champion's 0.5000 - tolerance 0.0",
    ]


def test_a_candidate_over_the_minimum_is_refused_when_it_regresses_too_far() -> None:
    config = GateConfig(min_macro_f1=0.5, max_regression=0.125)
    decision = decide(0.75, 0.9375, config)  # 0.1875 below the champion
    assert not decision.passed
    assert decision.reasons == [
        "macro F1 0.7500 >= minimum 0.5",
        "macro F1 0.7500 < champion's 0.9375 - tolerance 0.125",
    ]


@pytest.mark.parametrize(
    ("candidate", "passed"),
    [(0.875, True), (0.875 - BELOW, False)],
    ids=["at-the-minimum", "just-under-the-minimum"],
)
def test_the_minimum_is_inclusive(candidate: float, passed: bool) -> None:
    # No champion: only the minimum applies.
    decision = decide(candidate, None, GateConfig(min_macro_f1=0.875, max_regression=0.0))
    assert decision.passed is passed
    assert decision.reasons[0].split()[3] == (">=" if passed else "<")
    assert decision.champion_macro_f1 is None
    assert decision.reasons[-1] == "no champion to compare with"


@pytest.mark.parametrize(
    ("candidate", "passed"),
    [(0.75, True), (0.75 - BELOW, False)],
    ids=["at-the-tolerance", "just-past-the-tolerance"],
)
def test_the_allowed_regression_is_inclusive(candidate: float, passed: bool) -> None:
    # The minimum is 0, so only the regression rule can refuse.
    decision = decide(candidate, 0.875, GateConfig(min_macro_f1=0.0, max_regression=0.125))
    assert decision.passed is passed
    assert decision.reasons[1].split()[3] == (">=" if passed else "<")
    assert decision.candidate_macro_f1 == candidate
    assert decision.champion_macro_f1 == 0.875


def test_a_small_regression_within_the_tolerance_passes() -> None:
    # Slightly worse than the champion but within 0.125: a rule read as "must beat the
    # champion" (or a tolerance added instead of subtracted) would refuse it.
    assert decide(0.8125, 0.875, GateConfig(min_macro_f1=0.5, max_regression=0.125)).passed


def test_a_candidate_that_meets_both_rules_passes() -> None:
    decision = decide(0.9375, 0.875, GateConfig(min_macro_f1=0.875, max_regression=0.0))
    assert decision.passed
    assert [reason.split()[3] for reason in decision.reasons] == [">=", ">="]


@pytest.mark.parametrize(
    ("field", "value"),
    [("min_macro_f1", 1.5), ("min_macro_f1", -0.1), ("max_regression", 2.0)],
)
def test_thresholds_outside_zero_to_one_are_refused_naming_the_field(
    field: str, value: float
) -> None:
    bound = "less than or equal to 1" if value > 1 else "greater than or equal to 0"
    with pytest.raises(ValidationError, match=rf"{field}\n  Input should be {bound}"):
        GateConfig(**{field: value})


def test_a_threshold_setting_out_of_bounds_stops_promote_at_start_in_one_line(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("ARTPULSE_GATE_MAX_REGRESSION", "2")
    result = CliRunner().invoke(main, ["promote"])
    assert result.exit_code == 1
    assert result.output == (
        "Error: invalid setting: ARTPULSE_GATE_MAX_REGRESSION='2': "
        "Input should be less than or equal to 1\n"
    )


def test_a_threshold_option_out_of_bounds_is_one_line_naming_it() -> None:
    result = CliRunner().invoke(main, ["promote", "--min-macro-f1", "1.5"])
    assert result.exit_code == 2  # click's usage status: the value, not the model, is wrong
    assert result.output.splitlines()[-1] == (
        "Error: invalid value: --min-macro-f1=1.5: Input should be less than or equal to 1"
    )
