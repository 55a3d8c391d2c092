"""The one retry schedule: doubling up to a cap, with jitter so replicas drift apart."""

from __future__ import annotations

import itertools
import random

import pytest

from artpulse_contract.backoff import Backoff


def test_the_ceiling_doubles_from_the_initial_wait_up_to_the_cap() -> None:
    backoff = Backoff(0.5, 3.0)
    assert [backoff.ceiling(n) for n in range(1, 7)] == [0.5, 1.0, 2.0, 3.0, 3.0, 3.0]
    assert backoff.ceiling(10_000) == 3.0


def test_without_jitter_the_waits_are_the_ceilings() -> None:
    waits = list(itertools.islice(Backoff(0.5, 3.0, jitter=0.0).delays(), 5))
    assert waits == [0.5, 1.0, 2.0, 3.0, 3.0]


def test_jitter_takes_at_most_its_share_off_and_differs_between_draws() -> None:
    backoff = Backoff(1.0, 8.0, jitter=0.5)
    rng = random.Random(7)
    for attempt in range(1, 6):
        waits = [backoff.delay(attempt, rng) for _ in range(200)]
        ceiling = backoff.ceiling(attempt)
        assert all(ceiling * 0.5 <= wait <= ceiling for wait in waits)
        assert max(waits) - min(waits) > ceiling * 0.3  # spread over the band, not one value


def test_two_replicas_do_not_retry_in_lockstep() -> None:
    backoff = Backoff(1.0, 30.0)
    first = list(itertools.islice(backoff.delays(random.Random(1)), 8))
    second = list(itertools.islice(backoff.delays(random.Random(2)), 8))
    assert all(a != b for a, b in zip(first, second, strict=True))


@pytest.mark.parametrize(
    ("initial", "maximum", "jitter"), [(0.0, 1.0, 0.5), (2.0, 1.0, 0.5), (1.0, 2.0, 1.5)]
)
def test_a_schedule_that_cannot_work_is_refused(
    initial: float, maximum: float, jitter: float
) -> None:
    with pytest.raises(ValueError, match="backoff"):
        Backoff(initial, maximum, jitter)
