"""``artpulse generate-images``: write a labelled synthetic image dataset."""

from __future__ import annotations

import time
from pathlib import Path

import click

from artpulse_contract.constants import LABELS
from artpulse_jobs.data.generate import DEFAULT_SIZE, generate_images
from artpulse_jobs.data.styles import DEFAULT_VARIATION, Variation
from artpulse_jobs.reporting import on_terminal


@click.command("generate-images")
@click.option(
    "--output",
    required=True,
    type=click.Path(file_okay=False, path_type=Path),
    help="Folder to write into; images go to OUTPUT/<label>/<label>_<NNNN>.png.",
)
@click.option(
    "--per-label",
    default=200,
    show_default=True,
    type=click.IntRange(min=1),
    help="Images drawn for each of the five styles.",
)
@click.option(
    "--size",
    default=DEFAULT_SIZE,
    show_default=True,
    type=click.IntRange(min=16),
    help="Nominal image side in pixels; with variation each image varies around it.",
)
@click.option(
    "--seed",
    default=0,
    show_default=True,
    type=int,
    help="Random seed: the same seed and size give byte-identical files.",
)
@click.option(
    "--label",
    "labels",
    multiple=True,
    type=click.Choice(LABELS),
    help="Draw only this style (repeatable); default: all five.",
)
@click.option(
    "--no-variation",
    is_flag=True,
    help="Draw the reference styles exactly: square, fixed counts, no jitter, no JPEG.",
)
@click.option(
    "--workers",
    type=click.IntRange(min=1),
    default=None,
    help="Processes drawing in parallel (default: every available core).",
)
def generate_images_command(
    output: Path,
    per_label: int,
    size: int,
    seed: int,
    labels: tuple[str, ...],
    no_variation: bool,
    workers: int | None,
) -> None:
    """Draw PER_LABEL images of each art style into OUTPUT, deterministic per SEED.

    Each image varies in size, aspect ratio, colours and shape counts, and some are
    re-encoded as JPEG first, all within what keeps its style recognisable.
    """
    variation = Variation.none() if no_variation else DEFAULT_VARIATION
    start = time.perf_counter()
    paths = generate_images(
        output,
        per_label,
        size=size,
        seed=seed,
        labels=labels or LABELS,
        progress=on_terminal(),
        variation=variation,
        workers=workers,
    )
    elapsed = time.perf_counter() - start
    click.echo(f"wrote {len(paths)} images to {output} in {elapsed:.1f} s (seed {seed})")
