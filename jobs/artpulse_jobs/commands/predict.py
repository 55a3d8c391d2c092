"""``artpulse predict``: ask a running server for the style of images or of feature rows."""

from __future__ import annotations

from pathlib import Path

import click

from artpulse_contract.constants import FEATURE_NAMES
from artpulse_contract.network import CONNECTION_REFUSED
from artpulse_jobs.commands.options import Output, json_option
from artpulse_jobs.documents import prediction_document
from artpulse_jobs.reporting import format_prediction

ROW_HELP = ",".join(FEATURE_NAMES)


def _parse_row(text: str) -> list[float]:
    try:
        row = [float(value) for value in text.split(",")]
    except ValueError as exc:
        raise click.BadParameter(
            f"{text!r} is not comma-separated numbers ({exc})", param_hint="--features"
        ) from exc
    if len(row) != len(FEATURE_NAMES):
        raise click.BadParameter(
            f"{text!r} has {len(row)} values; expected {len(FEATURE_NAMES)}: {ROW_HELP}",
            param_hint="--features",
        )
    return row


@click.command("predict")
@click.option(
    "--features",
    "feature_rows",
    multiple=True,
    metavar="ROW",
    help=f"A feature row {ROW_HELP} (repeat for a batch).",
)
@click.option(
    "--image",
    "images",
    multiple=True,
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="An image file (repeat for a batch).",
)
@click.option(
    "--url",
    envvar="ARTPULSE_SERVER_URL",
    default="http://127.0.0.1:8080",
    show_default=True,
    help="REST address (or set ARTPULSE_SERVER_URL).",
)
@click.option("--grpc", "use_grpc", is_flag=True, help="Use gRPC instead of REST.")
@click.option(
    "--grpc-target",
    envvar="ARTPULSE_GRPC_TARGET",
    default="127.0.0.1:8081",
    show_default=True,
    help="gRPC host:port (or set ARTPULSE_GRPC_TARGET).",
)
@click.option(
    "--api-key",
    envvar="ARTPULSE_API_KEY",
    default=None,
    help="API key, when the server requires one (or set ARTPULSE_API_KEY).",
)
@json_option
def predict(
    feature_rows: tuple[str, ...],
    images: tuple[Path, ...],
    url: str,
    use_grpc: bool,
    grpc_target: str,
    api_key: str | None,
    as_json: bool,
) -> None:
    """Classify --image files or --features rows with a running server (REST by default).

    Exit status 0: answered; 1: the server could not be reached or answered an error;
    2: invalid usage.
    """
    if not feature_rows and not images:
        raise click.UsageError(
            f"nothing to classify: give --image PATH or --features {ROW_HELP} (each repeatable)"
        )
    if feature_rows and images:
        raise click.UsageError("give --image or --features, not both: a request has one input")
    rows = [_parse_row(text) for text in feature_rows]
    # Imported here: the client pulls in MLServer's gRPC stubs (about a second), which every
    # other artpulse command would otherwise pay for at start-up.
    from artpulse_jobs.serving.client import (
        PredictionError,
        ServerUnreachableError,
        predict_features_grpc,
        predict_features_rest,
        predict_images_grpc,
        predict_images_rest,
    )

    address = grpc_target if use_grpc else url
    try:
        if images:
            payload = [path.read_bytes() for path in images]
            names = [str(path) for path in images]
            if use_grpc:
                prediction = predict_images_grpc(grpc_target, payload, api_key=api_key)
            else:
                prediction = predict_images_rest(url, payload, api_key=api_key)
        else:
            names = list(feature_rows)
            if use_grpc:
                prediction = predict_features_grpc(grpc_target, rows, api_key=api_key)
            else:
                prediction = predict_features_rest(url, rows, api_key=api_key)
    except ServerUnreachableError as exc:
        hint = "; start one with `artpulse serve`" if exc.cause == CONNECTION_REFUSED else ""
        raise click.ClickException(f"{exc}{hint}") from exc
    except PredictionError as exc:
        raise click.ClickException(
            f"the server at {address} answered {exc.status}: {exc.message}"
        ) from exc
    output = Output(as_json)
    output.document(prediction_document(prediction, names))
    output.say(format_prediction(prediction, names))
