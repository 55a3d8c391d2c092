"""A small real training run for tests that need a registered model version."""

from __future__ import annotations

from pathlib import Path

from artpulse_contract.settings import ArtPulseSettings
from artpulse_jobs.data.generate import generate_images
from artpulse_jobs.training.train import TrainConfig, TrainResult, run_training


def train_registered_model(
    settings: ArtPulseSettings,
    tmp_dir: Path,
    *,
    per_label: int = 12,
    size: int = 96,
    seed: int = 0,
) -> TrainResult:
    """Generate ``per_label`` images per style into ``tmp_dir`` and train a registered version.

    Real generator, real feature extraction, real MLflow store (the one ``settings`` points
    at); a few seconds. Calling it again registers another version (``challenger`` only).
    """
    dataset_dir = tmp_dir / f"images-seed{seed}-{size}px-{per_label}"
    if not dataset_dir.exists():
        generate_images(dataset_dir, per_label, size=size, seed=seed)
    config = TrainConfig(dataset_dir=dataset_dir, seed=seed, test_size=0.25, min_per_label=2)
    return run_training(settings, config)
