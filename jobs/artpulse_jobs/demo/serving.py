"""The demo's serving step: serve the champion, classify a few images, show the events."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TYPE_CHECKING

import click

from artpulse_contract.constants import LABELS
from artpulse_contract.events import EventStore
from artpulse_jobs.demo.context import DemoContext
from artpulse_jobs.serving.server import server_on_free_ports

if TYPE_CHECKING:
    from artpulse_jobs.serving.client import Prediction

IMAGES_PER_PROTOCOL = 5


def _sample(ctx: DemoContext) -> list[tuple[str, str, bytes]]:
    """One held-out image per style, then one more of each: (label, name, bytes)."""
    picked = []
    for round_ in range(2):
        for label in LABELS:
            paths = sorted((ctx.eval_dir / label).glob("*.png"))
            if len(paths) > round_:
                picked.append((label, paths[round_].name, paths[round_].read_bytes()))
    return picked


def _show(protocol: str, truth: list[tuple[str, str, bytes]], answer: Prediction) -> None:
    rows = zip(truth, answer.labels, answer.probabilities, strict=True)
    for (label, name, _), predicted, row in rows:
        mark = "ok" if predicted == label else "MISS"
        click.echo(
            f"  {protocol:<4} {name:<24} true {label:<10} -> {predicted:<10} "
            f"p={row.max():.2f} {mark}"
        )


def serve_step(ctx: DemoContext) -> None:
    """Serve the champion over REST and gRPC, classify a few images, show the recorded events."""
    # Imported here: MLServer's gRPC stubs take about a second to import.
    from artpulse_jobs.serving.client import predict_images_grpc, predict_images_rest

    images = _sample(ctx)
    rest_batch, grpc_batch = images[:IMAGES_PER_PROTOCOL], images[IMAGES_PER_PROTOCOL:]
    started = datetime.now(UTC)
    with server_on_free_ports(ctx.settings, timeout=120) as server:
        click.echo(f"server ready: REST {server.http_url}, gRPC {server.grpc_target}")
        rest = predict_images_rest(server.http_url, [data for _, _, data in rest_batch])
        version = rest.model_version
        click.echo(f"REST: one request of {len(rest_batch)} images, model version {version}")
        _show("REST", rest_batch, rest)
        click.echo(f"gRPC: {len(grpc_batch)} requests of one image each")
        for item in grpc_batch:
            answer = predict_images_grpc(server.grpc_target, [item[2]])
            _show("gRPC", [item], answer)
    click.echo("server stopped (its event queue was flushed on shutdown)")
    store = EventStore(ctx.settings.resolved_events_url)
    try:
        recorded = store.count(since=started)
        where = ctx.settings.resolved_events_url
        click.echo(f"events recorded since the server started: {recorded} (store: {where})")
        for chunk in store.iter_chunks(since=started, last_n=3):
            for when, label, version in zip(
                chunk.timestamps, chunk.labels, chunk.model_versions, strict=True
            ):
                click.echo(f"  {when} version {version} -> {label}")
    finally:
        store.close()
    ctx.results["serve"] = {"events": recorded, "model_version": rest.model_version}
