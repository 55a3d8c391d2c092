"""``artpulse demo``: the local loop, step by step, on the embedded defaults (see ``demo``)."""

from __future__ import annotations

from pathlib import Path

import click

from artpulse_contract.settings import ArtPulseSettings
from artpulse_jobs.demo.context import DEFAULT_PER_LABEL, DEFAULT_SEED, DEFAULT_SIZE, DemoContext
from artpulse_jobs.demo.run import run_demo


@click.command("demo")
@click.option(
    "--work-dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Folder for the demo's images and reports (default: <state dir>/demo).",
)
@click.option(
    "--per-label",
    default=DEFAULT_PER_LABEL,
    show_default=True,
    type=click.IntRange(min=10),
    help="Training images generated per style.",
)
@click.option(
    "--size",
    default=DEFAULT_SIZE,
    show_default=True,
    type=click.IntRange(min=32),
    help="Nominal side of the training images in pixels.",
)
@click.option(
    "--seed",
    default=DEFAULT_SEED,
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
