"""The demo's first steps: generate images, train and register, show the versions."""

from __future__ import annotations

import time
from pathlib import Path

import click

from artpulse_contract.constants import LABELS
from artpulse_contract.registry import tags
from artpulse_contract.registry.connection import client_for
from artpulse_contract.registry.lookups import list_versions
from artpulse_jobs.data.generate import generate_images
from artpulse_jobs.demo.context import DemoContext
from artpulse_jobs.reporting import format_training, format_versions, on_terminal
from artpulse_jobs.training.train import TrainConfig, run_training


def _ensure_images(folder: Path, per_label: int, size: int, seed: int) -> str:
    expected = [
        folder / label / f"{label}_{i:04d}.png" for label in LABELS for i in range(per_label)
    ]
    if all(path.exists() for path in expected):
        return f"reusing {len(expected)} images in {folder}"
    start = time.perf_counter()
    paths = generate_images(folder, per_label, size=size, seed=seed, progress=on_terminal())
    return f"wrote {len(paths)} images to {folder} in {time.perf_counter() - start:.1f} s"


def generate_step(ctx: DemoContext) -> None:
    """Generate the training images and a held-out set drawn with another seed and size."""
    click.echo(_ensure_images(ctx.dataset_dir, ctx.per_label, ctx.size, ctx.seed))
    eval_size = ctx.size * 3 // 2
    click.echo(_ensure_images(ctx.eval_dir, max(10, ctx.per_label // 3), eval_size, ctx.seed + 1))


def train_step(ctx: DemoContext) -> None:
    """Train the candidates, log them to MLflow and register the best as a new version."""
    config = TrainConfig(
        dataset_dir=ctx.dataset_dir, eval_dirs=[ctx.eval_dir], seed=ctx.seed, progress=on_terminal()
    )
    result = run_training(ctx.settings, config, version_tags={tags.SOURCE: "demo"})
    ctx.results["train"] = result
    click.echo(format_training(result))


def models_step(ctx: DemoContext) -> None:
    """Show the registered versions with their aliases and metrics."""
    versions = list_versions(client_for(), ctx.settings.model_name)
    click.echo(format_versions(versions))
