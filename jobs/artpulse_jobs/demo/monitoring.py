"""The demo's monitoring steps: shifted traffic, drift, retrain, gated promotion, registry.

They run after the serving step: a batch of only vibrant and neo-pop images goes through the
real server (so the events are real), the drift check finds the shift, retraining adds those
(labelled) images to the training data and registers a challenger, and ``promote`` lets it
become champion only through the gate. Each step prints what it decided and why.
"""

from __future__ import annotations

from collections import Counter

import click

from artpulse_contract.registry.connection import client_for
from artpulse_contract.registry.lookups import list_versions
from artpulse_jobs.data.generate import generate_images
from artpulse_jobs.demo.context import DemoContext, DemoStep
from artpulse_jobs.monitoring.drift import run_drift
from artpulse_jobs.monitoring.drift_report import VERDICT_DRIFT
from artpulse_jobs.monitoring.retrain import retrain
from artpulse_jobs.promotion.gate import GateError
from artpulse_jobs.promotion.promote import PromotionError, promote
from artpulse_jobs.reporting import (
    describe_drift,
    describe_promotion,
    format_counts,
    format_versions,
)
from artpulse_jobs.serving.server import server_on_free_ports

SHIFTED_LABELS = ("vibrant", "neo-pop")
SHIFTED_PER_LABEL = 100
BATCH = 20


def shifted_traffic_step(ctx: DemoContext) -> None:
    """Send a style-shifted batch (only vibrant and neo-pop images) through the server."""
    from artpulse_jobs.serving.client import predict_images_rest  # MLServer stubs: slow to import

    folder = ctx.work_dir / f"shifted-seed{ctx.seed + 7}"
    if not all((folder / label).is_dir() for label in SHIFTED_LABELS):
        generate_images(
            folder, SHIFTED_PER_LABEL, size=ctx.size, seed=ctx.seed + 7, labels=SHIFTED_LABELS
        )
    paths = sorted(folder.glob("*/*.png"))
    ctx.results["shifted_dir"] = folder
    predicted: Counter[str] = Counter()
    with server_on_free_ports(ctx.settings, timeout=120) as server:
        for start in range(0, len(paths), BATCH):
            batch = [path.read_bytes() for path in paths[start : start + BATCH]]
            answer = predict_images_rest(server.http_url, batch)
            predicted.update(answer.labels)
    click.echo(
        f"sent {len(paths)} images labelled {' and '.join(SHIFTED_LABELS)} from {folder} "
        f"in batches of {BATCH} to model version {answer.model_version}"
    )
    click.echo(f"the server predicted: {format_counts(predicted)}")
    click.echo("these images are labelled, so retraining can use them as new data")


def drift_step(ctx: DemoContext) -> None:
    """Check the champion's recent events for drift against its training reference."""
    result = run_drift(ctx.settings)
    ctx.results["drift"] = result
    click.echo(describe_drift(result))
    if result.verdict == VERDICT_DRIFT:
        click.echo(f"decision: drift ({', '.join(result.report['drifted_features']) or 'labels'})")
    else:
        click.echo(f"decision: {result.verdict}; retraining will not run")


def retrain_step(ctx: DemoContext) -> None:
    """Retrain on the dataset plus the newly labelled images when drift was found."""
    report = ctx.results["drift"].report if "drift" in ctx.results else None
    extra = [ctx.results["shifted_dir"]] if "shifted_dir" in ctx.results else []
    outcome = retrain(ctx.settings, report, dataset_dir=ctx.dataset_dir, new_data_dirs=extra)
    ctx.results["retrain"] = outcome
    click.echo(outcome.message)


def promote_step(ctx: DemoContext) -> None:
    """Promote the challenger through the gate (scored on the champion's held-out set)."""
    outcome = ctx.results.get("retrain")
    if outcome is None or not outcome.retrained:
        click.echo("no new challenger from this run: nothing to promote")
        return
    try:
        promoted = promote(ctx.settings, version=outcome.result.version)
    except (PromotionError, GateError) as error:
        click.echo(f"promotion not possible: {error}")
        return
    click.echo(describe_promotion(promoted))


def registry_step(ctx: DemoContext) -> None:
    """Show the registered versions and where the aliases point now."""
    click.echo(format_versions(list_versions(client_for(), ctx.settings.model_name)))


MONITORING_STEPS: list[DemoStep] = [
    shifted_traffic_step,
    drift_step,
    retrain_step,
    promote_step,
    registry_step,
]
"""The demo's steps after the serving step, in order."""
