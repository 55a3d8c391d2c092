"""The demo's steps in order, and the loop that runs them.

``DEMO_STEPS`` is an ordered list of functions taking a ``DemoContext``; each prints what it
did. The first line of a step's docstring is its title. Steps pass results to later steps
through ``DemoContext.results`` (e.g. ``results["train"]`` holds the ``TrainResult``).
"""

from __future__ import annotations

import time

import click

from artpulse_contract.registry.connection import configure_tracking
from artpulse_jobs.demo.context import DemoContext, DemoStep
from artpulse_jobs.demo.monitoring import MONITORING_STEPS
from artpulse_jobs.demo.serving import serve_step
from artpulse_jobs.demo.training import generate_step, models_step, train_step

DEMO_STEPS: list[DemoStep] = [
    generate_step,
    train_step,
    models_step,
    serve_step,
    *MONITORING_STEPS,
]
"""The demo's steps, in order."""


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
