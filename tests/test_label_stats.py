"""The label statistics drift and canary analysis share (``artpulse_contract.label_stats``)."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats
from scipy.spatial import distance

from artpulse_contract.constants import LABELS
from artpulse_contract.label_stats import LabelAccumulator, label_tests, labels_differ


def test_label_tests_is_the_two_sample_chi_square_and_base_2_jensen_shannon() -> None:
    reference = np.array([100, 80, 60, 40, 20])
    current = np.array([20, 40, 60, 80, 100])
    chi2, p_value, js = label_tests(reference, current)
    expected = stats.chi2_contingency(np.vstack([reference, current]), correction=False)
    assert chi2 == pytest.approx(expected.statistic)
    assert p_value == pytest.approx(expected.pvalue)
    assert js == pytest.approx(
        distance.jensenshannon(reference / reference.sum(), current / current.sum(), base=2)
    )


def test_identical_proportions_do_not_differ_and_labels_absent_from_both_are_left_out() -> None:
    chi2, p_value, js = label_tests(np.array([50, 50, 0, 0, 0]), np.array([100, 100, 0, 0, 0]))
    assert (chi2, p_value) == pytest.approx((0.0, 1.0))
    assert js == pytest.approx(0.0, abs=1e-9)


def test_a_single_used_label_has_nothing_to_test() -> None:
    assert label_tests(np.array([5, 0, 0, 0, 0]), np.array([9, 0, 0, 0, 0]))[:2] == (0.0, 1.0)


@pytest.mark.parametrize(
    ("p_value", "js", "differ"),
    [
        (0.001, 0.2, True),  # significant and material
        (0.5, 0.2, False),  # material but could be noise
        (0.001, 0.05, False),  # significant but negligible
        (0.01, 0.2, False),  # p at alpha does not reject
        (0.001, 0.1, True),  # the distance threshold is inclusive
    ],
)
def test_labels_differ_only_when_significant_and_material(
    p_value: float, js: float, differ: bool
) -> None:
    assert labels_differ(p_value, js, alpha=0.01, min_js=0.1) is differ


def test_accumulator_counts_labels_in_order_from_arrays_and_from_counts() -> None:
    accumulator = LabelAccumulator()
    accumulator.update(np.array([LABELS[0], LABELS[2], LABELS[2], "cubist"], dtype=object))
    accumulator.add_counts({LABELS[4]: 3, "cubist": 2, LABELS[0]: 1})
    assert accumulator.counts.tolist() == [2, 0, 2, 0, 3]
    assert accumulator.unknown == 3
