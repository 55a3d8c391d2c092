"""``artpulse demo``: the local loop, step by step, on the embedded defaults.

``DEMO_STEPS`` is an ordered list of functions taking a ``DemoContext``; each prints what it
did. The first line of a step's docstring is its title. Steps pass results to later steps
through ``DemoContext.results`` (e.g. ``results["train"]`` holds the ``TrainResult``).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import click

from artpulse_jobs.demo_monitoring import MONITORING_STEPS
from artpulse_jobs.demo_serving import serve_step
from artpulse_jobs.generate import generate_images
from artpulse_jobs.models_command import format_versions
from artpulse_jobs.registry import list_versions, tracking_client
from artpulse_jobs.train import TrainConfig, run_training
from artpulse_jobs.train_command import format_result
from artpulse_runtime.constants import LABELS
from artpulse_runtime.settings import ArtPulseSettings
from artpulse_runtime.tracking import configure_tracking


@dataclass
class DemoContext:
    """What the demo steps share: settings, folders, options and results of earlier steps."""

    settings: ArtPulseSettings
    work_dir: Path
    """Folder for everything the demo writes besides the registry (images, reports)."""
    dataset_dir: Path
    """The generated training images."""
    eval_dir: Path
    """Images generated with another seed and size: the generalisation check."""
    per_label: int = 120
    size: int = 256
    seed: int = 0
    results: dict[str, Any] = field(default_factory=dict)


DemoStep = Callable[[DemoContext], None]


def _ensure_images(folder: Path, per_label: int, size: int, seed: int) -> str:
    expected = [
        folder / label / f"{label}_{i:04d}.png" for label in LABELS for i in range(per_label)
    ]
    if all(path.exists() for path in expected):
        return f"reusing {len(expected)} images in {folder}"
    start = time.perf_counter()
    paths = generate_images(folder, per_label, size=size, seed=seed, progress=True)
    return f"wrote {len(paths)} images to {folder} in {time.perf_counter() - start:.1f} s"


def generate_step(ctx: DemoContext) -> None:
    """Generate the training images and a held-out set drawn with another seed and size."""
    click.echo(_ensure_images(ctx.dataset_dir, ctx.per_label, ctx.size, ctx.seed))
    eval_size = ctx.size * 3 // 2
    click.echo(_ensure_images(ctx.eval_dir, max(10, ctx.per_label // 3), eval_size, ctx.seed + 1))


def train_step(ctx: DemoContext) -> None:
    """Train the candidates, log them to MLflow and register the best as a new version."""
    config = TrainConfig(
        dataset_dir=ctx.dataset_dir, eval_dirs=[ctx.eval_dir], seed=ctx.seed, progress=True
    )
    result = run_training(ctx.settings, config, version_tags={"artpulse.source": "demo"})
    ctx.results["train"] = result
    click.echo(format_result(result))


def models_step(ctx: DemoContext) -> None:
    """Show the registered versions with their aliases and metrics."""
    versions = list_versions(tracking_client(), ctx.settings.model_name)
    click.echo(format_versions(versions))


DEMO_STEPS: list[DemoStep] = [
    generate_step,
    train_step,
    models_step,
    serve_step,
    *MONITORING_STEPS,
]
"""The demo's steps, in order; other components append theirs."""


def _title(step: DemoStep) -> str:
    return (step.__doc__ or step.__name__).strip().splitlines()[0]


def run_demo(ctx: DemoContext, steps: list[DemoStep] | None = None) -> None:
    """Run ``steps`` (default ``DEMO_STEPS``) in order, printing a numbered title for each."""
    steps = DEMO_STEPS if steps is None else steps
    configure_tracking(ctx.settings)
    for number, step in enumerate(steps, start=1):
        click.secho(f"\n[{number}/{len(steps)}] {_title(step)}", bold=True)
        start = time.perf_counter()
        step(ctx)
        click.echo(f"({time.perf_counter() - start:.1f} s)")


@click.command("demo")
@click.option(
    "--work-dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Folder for the demo's images and reports (default: <state dir>/demo).",
)
@click.option(
    "--per-label",
    default=120,
    show_default=True,
    type=click.IntRange(min=10),
    help="Training images generated per style.",
)
@click.option(
    "--size",
    default=256,
    show_default=True,
    type=click.IntRange(min=32),
    help="Nominal side of the training images in pixels.",
)
@click.option(
    "--seed",
    default=0,
    show_default=True,
    type=int,
    help="Seed of the training images (the held-out set uses SEED + 1).",
)
def demo_command(work_dir: Path | None, per_label: int, size: int, seed: int) -> None:
    """Run the local loop: generate images, train, register, show the versions, and more.

    Uses the embedded defaults (state in ./.artpulse) unless ARTPULSE_* or
    MLFLOW_TRACKING_URI say otherwise. Running it again registers another version.
    """
    settings = ArtPulseSettings()
    folder = work_dir or settings.ensure_state_dir() / "demo"
    ctx = DemoContext(
        settings=settings,
        work_dir=folder,
        dataset_dir=folder / f"images-seed{seed}-{size}px",
        eval_dir=folder / f"eval-seed{seed + 1}-{size * 3 // 2}px",
        per_label=per_label,
        size=size,
        seed=seed,
    )
    run_demo(ctx)
    click.secho("\ndemo finished", bold=True)
