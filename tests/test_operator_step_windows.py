"""A canary step's windows read incrementally (running totals) and exactly, from a real
SQLite event store."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from artpulse_contract.constants import MODEL_NAME
from artpulse_contract.events import EventStore
from artpulse_contract.events.outcomes import write_outcomes
from artpulse_contract.events.version_window import VersionWindow
from artpulse_operator.step_windows import SETTLE_SECONDS, StepWindows
from support.canary_traffic import EVEN, outcome, predictions

START = datetime(2026, 11, 1, 12, 0, tzinfo=UTC)
VERSIONS = ("2", "1")


def at(seconds: float) -> datetime:
    return START + timedelta(seconds=seconds)


@pytest.fixture
def windows(tmp_path: Path) -> StepWindows:
    return StepWindows(EventStore(f"sqlite:///{tmp_path / 'events.db'}"))


def write(windows: StepWindows, version: str, count: int, when: float, seed: int) -> None:
    windows.store.write(predictions(version, count, EVEN, at=at(when), seed=seed))
    write_outcomes(windows.store, [outcome(version, count, at=at(when))])


def counts(read: dict[str, VersionWindow]) -> dict[str, tuple[int, int]]:
    return {v: (w.predictions, w.outcomes.answered) for v, w in read.items()}


def test_running_totals_match_the_exact_window_when_events_arrive_on_time(
    windows: StepWindows,
) -> None:
    write(windows, "2", 10, 5, seed=1)
    write(windows, "1", 30, 5, seed=2)
    first = windows.read("uid", MODEL_NAME, VERSIONS, START, at(10))
    assert counts(first) == {"2": (10, 10), "1": (30, 30)}
    for second in (50, 100, 150):  # each poll settles more of the window
        write(windows, "2", 10, second - 1, seed=second)
        running = windows.read("uid", MODEL_NAME, VERSIONS, START, at(second))
        exact = windows.read("other", MODEL_NAME, VERSIONS, START, at(second), exact=True)
        assert running == exact
    assert counts(running)["2"] == (40, 40)


def test_an_event_that_arrives_late_counts_only_in_the_exact_read(windows: StepWindows) -> None:
    write(windows, "2", 10, 5, seed=1)
    windows.read("uid", MODEL_NAME, VERSIONS, START, at(100))  # settles [START, 100 - SETTLE)
    write(windows, "2", 3, 100 - SETTLE_SECONDS - 10, seed=2)  # written now, stamped long ago
    running = windows.read("uid", MODEL_NAME, VERSIONS, START, at(101))
    assert running["2"].predictions == 10
    exact = windows.read("uid", MODEL_NAME, VERSIONS, START, at(101), exact=True)
    assert exact["2"].predictions == 13
    # The exact read starts the running totals afresh: they count it from now on.
    assert windows.read("uid", MODEL_NAME, VERSIONS, START, at(102))["2"].predictions == 13


def test_a_new_step_or_forgetting_starts_afresh(windows: StepWindows) -> None:
    write(windows, "2", 10, 5, seed=1)
    write(windows, "2", 4, 70, seed=2)
    assert windows.read("uid", MODEL_NAME, VERSIONS, START, at(100))["2"].predictions == 14
    next_step = windows.read("uid", MODEL_NAME, VERSIONS, at(60), at(101))
    assert next_step["2"].predictions == 4
    windows.forget("uid")
    assert windows.read("uid", MODEL_NAME, VERSIONS, START, at(102))["2"].predictions == 14
