"""Set-up shared by the drift, retrain and promotion tests: a registry, quick trainings."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

import pytest

from artpulse_jobs.generate import generate_images
from artpulse_jobs.train import TrainConfig, TrainResult, run_training
from artpulse_runtime.settings import ArtPulseSettings
from artpulse_runtime.tracking import configure_tracking


@contextmanager
def module_settings(root: Path) -> Iterator[ArtPulseSettings]:
    """Settings on a state folder under ``root``, with the environment pointing at it."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("ARTPULSE_STATE_DIR", str(root / "state"))
        for name in ("MLFLOW_TRACKING_URI", "ARTPULSE_EVENTS_URL", "ARTPULSE_MODEL_URI"):
            patch.delenv(name, raising=False)
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
