"""``artpulse serve``: run the V2 server (MLServer behind the ArtPulse guard) in the foreground."""

from __future__ import annotations

import os
from pathlib import Path

import click

from artpulse_contract.settings import ArtPulseSettings
from artpulse_jobs.serving.server import server_command, server_environment


@click.command("serve")
@click.option("--host", default=None, help="Address to bind (MLSERVER_HOST; MLServer: 0.0.0.0).")
@click.option("--http-port", type=int, default=None, help="REST port (MLSERVER_HTTP_PORT; 8080).")
@click.option("--grpc-port", type=int, default=None, help="gRPC port (MLSERVER_GRPC_PORT; 8081).")
@click.option(
    "--metrics-port", type=int, default=None, help="Metrics port (MLSERVER_METRICS_PORT; 8082)."
)
@click.option(
    "--model-uri",
    default=None,
    help="models:/<name>/<N> or models:/<name>@<alias> (ARTPULSE_MODEL_URI; the champion).",
)
@click.option(
    "--parallel-workers",
    type=int,
    default=None,
    help="MLServer worker processes (MLSERVER_PARALLEL_WORKERS; 0: decode on threads in-process).",
)
@click.option(
    "--repository",
    type=click.Path(exists=True, file_okay=False, path_type=Path),
    default=None,
    help="MLServer repository folder (default: the runtime/ folder of this installation).",
)
def serve(
    host: str | None,
    http_port: int | None,
    grpc_port: int | None,
    metrics_port: int | None,
    model_uri: str | None,
    parallel_workers: int | None,
    repository: Path | None,
) -> None:
    """Serve the registered model over V2 REST and gRPC until interrupted.

    Flags override the MLSERVER_* variables they name; anything unset keeps MLServer's
    default. ARTPULSE_API_KEYS_FILE turns on API keys, ARTPULSE_ADMIN_KEYS_FILE opens the
    repository API to operators; request bounds are ARTPULSE_MAX_* (see the README).
    Ready: GET /v2/models/artpulse-classifier/ready; metrics on the metrics port.
    """
    settings = ArtPulseSettings()
    flags = {
        "MLSERVER_HOST": host,
        "MLSERVER_HTTP_PORT": http_port,
        "MLSERVER_GRPC_PORT": grpc_port,
        "MLSERVER_METRICS_PORT": metrics_port,
        "MLSERVER_PARALLEL_WORKERS": parallel_workers,
    }
    overrides = {name: str(value) for name, value in flags.items() if value is not None}
    env = server_environment(settings, base=os.environ, model_uri=model_uri, overrides=overrides)
    command = server_command(repository)
    click.echo(f"serving {env['ARTPULSE_MODEL_URI']}: {' '.join(command)}", err=True)
    os.execve(command[0], command, env)
