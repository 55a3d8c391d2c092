"""Helpers for the serving tests: a trained registry, sample images, polling, stored events."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from artpulse_jobs.generate import generate_images
from artpulse_runtime.events import prediction_events
from artpulse_runtime.settings import ArtPulseSettings
from artpulse_runtime.tracking import configure_tracking
from support.training import train_registered_model

ENV_NAMES = (
    "ARTPULSE_STATE_DIR",
    "MLFLOW_TRACKING_URI",
    "ARTPULSE_EVENTS_URL",
    "ARTPULSE_MODEL_URI",
)


@contextmanager
def trained_settings(folder: Path) -> Iterator[ArtPulseSettings]:
    """Settings on a fresh state folder under ``folder`` holding one trained champion version.

    The environment is set for the block's duration, so subprocesses agree with it.
    """
    with pytest.MonkeyPatch.context() as patch:
        for name in ENV_NAMES:
            patch.delenv(name, raising=False)
        patch.setenv("ARTPULSE_STATE_DIR", str(folder / "state"))
        settings = ArtPulseSettings()
        configure_tracking(settings)
        train_registered_model(settings, folder)
        yield settings


def sample_images(folder: Path, per_label: int = 2, size: int = 256, seed: int = 7) -> list[bytes]:
    """Distinct PNG images of every style, encoded, in a stable order."""
    paths = generate_images(folder / f"samples-{seed}", per_label, size=size, seed=seed)
    return [path.read_bytes() for path in sorted(paths)]


def wait_until(condition: Callable[[], bool], timeout: float, what: str) -> None:
    """Poll ``condition`` until it holds; fail the test naming ``what`` after ``timeout`` s."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.05)
    pytest.fail(f"timed out after {timeout} s waiting for {what}")


def stored_events(events_url: str, request_id: str) -> list[dict[str, Any]]:
    """Rows of the event store written for ``request_id``, in insertion order."""
    engine = sa.create_engine(events_url)
    try:
        with engine.connect() as connection:
            if not sa.inspect(connection).has_table(prediction_events.name):
                return []
            query = (
                sa.select(prediction_events)
                .where(prediction_events.c.request_id == request_id)
                .order_by(prediction_events.c.id)
            )
            return [dict(row._mapping) for row in connection.execute(query)]
    finally:
        engine.dispose()
