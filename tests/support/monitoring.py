"""Set-up shared by the drift, retrain and promotion tests: a registry, quick trainings."""

from __future__ import annotations

import shutil
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pytest
from mlflow import MlflowClient

from artpulse_contract.constants import LABELS, MODEL_NAME
from artpulse_contract.events import EventStore, events_from_predictions
from artpulse_contract.registry.connection import configure_tracking
from artpulse_contract.settings import ArtPulseSettings
from artpulse_jobs.data.datasets import load_image_dataset
from artpulse_jobs.data.generate import generate_images
from artpulse_jobs.training.train import TrainConfig, TrainResult, run_training


def _migrated_store(folder: Path) -> Path:
    """An empty MLflow SQLite store with every migration applied, made once in ``folder``.

    Creating a store runs MLflow's schema migrations, 3-10 s on a busy machine; the modules
    copy this file instead. Each copy is a real, independent store.
    """
    path = folder / "mlflow.db"
    if not path.exists():
        folder.mkdir(parents=True, exist_ok=True)
        uri = f"sqlite:///{path}"
        MlflowClient(tracking_uri=uri, registry_uri=uri).search_experiments()
    return path


@contextmanager
def module_settings(
    root: Path, *, tracking_uri: str | None = None, model_name: str = MODEL_NAME
) -> Iterator[ArtPulseSettings]:
    """Settings on a fresh state folder under ``root``; the environment points at it.

    The registry is a fresh SQLite store in the state folder, or the tracking server at
    ``tracking_uri``. ``root`` comes from ``tmp_path_factory``, so its parent is the
    session's temp folder, where the migrated store template is kept.
    """
    state = root / "state"
    state.mkdir(parents=True, exist_ok=True)
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("ARTPULSE_STATE_DIR", str(state))
        patch.setenv("ARTPULSE_MODEL_NAME", model_name)
        for name in ("MLFLOW_TRACKING_URI", "ARTPULSE_EVENTS_URL", "ARTPULSE_MODEL_URI"):
            patch.delenv(name, raising=False)
        if tracking_uri is None:
            template = _migrated_store(root.parent / "mlflow-store-template")
            shutil.copyfile(template, state / "mlflow.db")
        else:
            patch.setenv("MLFLOW_TRACKING_URI", tracking_uri)
        settings = ArtPulseSettings()
        configure_tracking(settings)
        yield settings


def images(root: Path, per_label: int, seed: int) -> Path:
    """A generated image folder (96 px) under ``root``, made once per (per_label, seed)."""
    folder = root / f"images-{per_label}-seed{seed}"
    if not folder.exists():
        generate_images(folder, per_label, size=96, seed=seed)
    return folder


def quick_training(
    settings: ArtPulseSettings,
    dataset_dir: Path,
    extra_dirs: Sequence[Path] = (),
    version_tags: dict[str, str] | None = None,
) -> TrainResult:
    """A real training and registration with one candidate and no worker processes."""
    config = TrainConfig(
        dataset_dir=dataset_dir,
        extra_dataset_dirs=list(extra_dirs),
        test_size=0.25,
        min_per_label=2,
        candidates=("logistic_regression",),
        workers=1,
    )
    return run_training(settings, config, version_tags=version_tags)


@dataclass(frozen=True)
class TrainedChampion:
    """A registered champion and the images and features it was trained on."""

    settings: ArtPulseSettings
    version: str
    dataset_dir: Path
    features: np.ndarray
    labels: np.ndarray


@contextmanager
def trained_champion(
    root: Path, *, tracking_uri: str | None = None, model_name: str = MODEL_NAME
) -> Iterator[TrainedChampion]:
    """``module_settings`` under ``root`` with one quick training of 20 images per label."""
    with module_settings(root, tracking_uri=tracking_uri, model_name=model_name) as settings:
        dataset_dir = images(root, 20, seed=0)
        result = quick_training(settings, dataset_dir)
        dataset = load_image_dataset(dataset_dir, 2, workers=1)
        yield TrainedChampion(
            settings, result.version, dataset_dir, dataset.features, dataset.labels
        )


def write_events(
    url: str,
    features: np.ndarray,
    labels: np.ndarray,
    version: str,
    when: datetime | None = None,
    *,
    request_id: str = "test",
    input_kind: str = "features",
) -> None:
    """Store one event per row (one-hot probabilities for ``labels``), as serving would."""
    probabilities = np.eye(len(LABELS), dtype=np.float32)[labels]
    store = EventStore(url)
    try:
        store.write(
            events_from_predictions(
                timestamp=when or datetime.now(UTC),
                request_id=request_id,
                model_name=MODEL_NAME,
                model_version=version,
                input_kind=input_kind,
                features=features,
                labels=[LABELS[i] for i in labels],
                probabilities=probabilities,
            )
        )
    finally:
        store.close()
