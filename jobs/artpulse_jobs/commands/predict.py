"""``artpulse predict``: ask a running server for the style of images or of feature rows."""

from __future__ import annotations

from pathlib import Path

import click

from artpulse_contract.constants import FEATURE_NAMES
from artpulse_jobs.reporting import format_prediction


def _parse_row(text: str) -> list[float]:
    try:
        row = [float(value) for value in text.split(",")]
    except ValueError as exc:
        raise click.BadParameter(f"{text!r} is not comma-separated numbers ({exc})") from exc
    if len(row) != len(FEATURE_NAMES):
        raise click.BadParameter(
            f"{text!r} has {len(row)} values; expected {len(FEATURE_NAMES)}: "
            + ",".join(FEATURE_NAMES)
        )
    return row


@click.command("predict")
@click.option(
    "--features",
    "feature_rows",
    multiple=True,
    help=f"A feature row {','.join(FEATURE_NAMES)} (repeat for a batch).",
)
@click.option(
    "--image",
    "images",
    multiple=True,
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="An image file (repeat for a batch).",
)
@click.option("--url", default="http://127.0.0.1:8080", show_default=True, help="REST address.")
@click.option("--grpc", "use_grpc", is_flag=True, help="Use gRPC instead of REST.")
@click.option("--grpc-target", default="127.0.0.1:8081", show_default=True, help="gRPC host:port.")
@click.option(
    "--api-key",
    envvar="ARTPULSE_API_KEY",
    default=None,
    help="API key, when the server requires one (or set ARTPULSE_API_KEY).",
)
def predict(
    feature_rows: tuple[str, ...],
    images: tuple[Path, ...],
    url: str,
    use_grpc: bool,
    grpc_target: str,
    api_key: str | None,
) -> None:
    """Classify --image files or --features rows with a running server (REST by default)."""
    # Imported here: the client pulls in MLServer's gRPC stubs (about a second), which every
    # other artpulse command would otherwise pay for at start-up.
    from artpulse_jobs.serving.client import (
        PredictionError,
        predict_features_grpc,
        predict_features_rest,
        predict_images_grpc,
        predict_images_rest,
    )

    if bool(feature_rows) == bool(images):
        raise click.UsageError("give --image PATH (one or more) or --features a,b,c,d,e, not both")
    try:
        if images:
            payload = [path.read_bytes() for path in images]
            names = [str(path) for path in images]
            if use_grpc:
                prediction = predict_images_grpc(grpc_target, payload, api_key=api_key)
            else:
                prediction = predict_images_rest(url, payload, api_key=api_key)
        else:
            rows = [_parse_row(text) for text in feature_rows]
            names = list(feature_rows)
            if use_grpc:
                prediction = predict_features_grpc(grpc_target, rows, api_key=api_key)
            else:
                prediction = predict_features_rest(url, rows, api_key=api_key)
    except PredictionError as exc:
        raise click.ClickException(
            f"server refused the request ({exc.status}): {exc.message}"
        ) from exc
    except OSError as exc:
        raise click.ClickException(f"cannot reach the server: {exc}") from exc
    click.echo(format_prediction(prediction, names))
