"""Helpers for the serving tests: a trained registry, a served model, polling, stored events."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import mlflow.pyfunc
import pytest
import sqlalchemy as sa

from artpulse_contract.classifier import ArtPulseClassifier
from artpulse_contract.constants import ALIAS_CHAMPION, MODEL_NAME
from artpulse_contract.events import prediction_events
from artpulse_contract.registry.connection import configure_tracking
from artpulse_contract.settings import ArtPulseSettings
from artpulse_jobs.data.generate import generate_images
from artpulse_jobs.serving.server import ServerHandle, server_on_free_ports
from support.training import train_registered_model

ENV_NAMES = (
    "ARTPULSE_STATE_DIR",
    "MLFLOW_TRACKING_URI",
    "ARTPULSE_EVENTS_URL",
    "ARTPULSE_MODEL_URI",
)

MAX_BYTES = 300_000
"""The served model's ``ARTPULSE_MAX_IMAGE_BYTES``."""
MAX_PIXELS = 1_000_000
"""The served model's ``ARTPULSE_MAX_IMAGE_PIXELS``."""
OUTCOME_INTERVAL = 0.5
"""The served model's ``ARTPULSE_OUTCOME_INTERVAL``: serving outcomes written twice a second."""


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


@dataclass(frozen=True)
class Served:
    """A running server, its settings, sample images and the model it serves, loaded here."""

    settings: ArtPulseSettings
    server: ServerHandle
    images: list[bytes]
    classifier: ArtPulseClassifier
    version: str

    @property
    def infer_url(self) -> str:
        """The REST inference endpoint of the served model."""
        return f"{self.server.http_url}/v2/models/{MODEL_NAME}/infer"


@contextmanager
def served_model(folder: Path) -> Iterator[Served]:
    """Train a champion under ``folder`` and serve it, with image limits MAX_BYTES, MAX_PIXELS
    and outcomes written every OUTCOME_INTERVAL seconds.

    The environment ``trained_settings`` sets is restored once the server runs (the server
    keeps its own copy), so a long-lived server does not leak it into other tests.
    """
    with ExitStack() as stack:
        with trained_settings(folder) as settings:
            champion = mlflow.MlflowClient().get_model_version_by_alias(MODEL_NAME, ALIAS_CHAMPION)
            classifier = mlflow.pyfunc.load_model(
                f"models:/{MODEL_NAME}/{champion.version}"
            ).unwrap_python_model()
            images = sample_images(folder)
            limits = {
                "ARTPULSE_MAX_IMAGE_BYTES": str(MAX_BYTES),
                "ARTPULSE_MAX_IMAGE_PIXELS": str(MAX_PIXELS),
                "ARTPULSE_OUTCOME_INTERVAL": str(OUTCOME_INTERVAL),
            }
            server = stack.enter_context(server_on_free_ports(settings, env=limits))
        yield Served(settings, server, images, classifier, str(champion.version))
