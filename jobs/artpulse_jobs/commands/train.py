"""``artpulse train``: train the candidates on an image folder and register the best."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import click
from mlflow.exceptions import MlflowException

from artpulse_contract.constants import TRAINING_EXPERIMENT, FeatureMode
from artpulse_contract.registry.failures import RegistryError
from artpulse_contract.settings import ArtPulseSettings
from artpulse_jobs.commands.options import Output, failure, json_option
from artpulse_jobs.data.datasets import DatasetError
from artpulse_jobs.documents import training_document
from artpulse_jobs.reporting import format_training, on_terminal
from artpulse_jobs.training.candidates import CANDIDATES
from artpulse_jobs.training.fitting import TrainingError
from artpulse_jobs.training.train import TrainConfig, run_training

DEFAULTS = TrainConfig(dataset_dir=Path())
"""A configuration of ``TrainConfig``'s defaults: the options show and use them."""


_FOLDER = click.Path(exists=True, file_okay=False, path_type=Path)


def _parse_tags(values: tuple[str, ...]) -> dict[str, str]:
    tags = {}
    for value in values:
        key, sep, text = value.partition("=")
        if not sep or not key:
            raise click.BadParameter(f"{value!r} is not KEY=VALUE", param_hint="--tag")
        tags[key] = text
    return tags


def _warn_about(dataset: dict[str, Any], dataset_dir: Path) -> None:
    """Name every file skipped and every folder ignored, on stderr."""
    for skipped in dataset["skipped"]:
        click.echo(f"skipped unreadable file {skipped['path']}: {skipped['reason']}", err=True)
    for entry in dataset["unknown_entries"]:
        click.echo(
            f"ignored {entry} in {dataset_dir}: not a label folder "
            f"(labels: {', '.join(dataset['counts'])})",
            err=True,
        )


@click.command("train")
@click.option(
    "--dataset-dir",
    required=True,
    type=_FOLDER,
    help="Image folder: DIR/<label>/**/*.{png,jpg,jpeg,webp,bmp}, one folder per label.",
)
@click.option(
    "--extra-dataset-dir",
    "extra_dirs",
    multiple=True,
    type=_FOLDER,
    help="Another image folder added to the training data (repeatable).",
)
@click.option(
    "--eval-dir",
    "eval_dirs",
    multiple=True,
    type=_FOLDER,
    help="Image folder never trained on, scored as a generalisation check "
    "(repeatable; logged as eval_* metrics).",
)
@click.option(
    "--seed",
    default=DEFAULTS.seed,
    show_default=True,
    type=int,
    help="Seed of the split and of the candidates.",
)
@click.option(
    "--test-size",
    default=DEFAULTS.test_size,
    show_default=True,
    type=click.FloatRange(0, 1, min_open=True, max_open=True),
    help="Share of images held out for scoring.",
)
@click.option(
    "--cv-folds",
    default=DEFAULTS.cv_folds,
    show_default=True,
    type=click.IntRange(min=0),
    help="Stratified cross-validation folds on the training split (0: off).",
)
@click.option(
    "--candidate",
    "candidates",
    multiple=True,
    type=click.Choice([c.name for c in CANDIDATES]),
    help="Train only this candidate (repeatable; default: all).",
)
@click.option(
    "--feature-mode",
    default=DEFAULTS.feature_mode.value,
    show_default=True,
    type=click.Choice([mode.value for mode in FeatureMode]),
    help="How images become features: exact (full-size decode) or draft (JPEGs decoded at a "
    "reduced DCT scale); recorded with the model, which serving and drift follow.",
)
@click.option(
    "--min-per-label",
    default=DEFAULTS.min_per_label,
    show_default=True,
    type=click.IntRange(min=2),
    help="Fewest readable images a label folder needs.",
)
@click.option(
    "--model-name",
    default=None,
    help="Registered model name (default: ARTPULSE_MODEL_NAME, artpulse-classifier).",
)
@click.option(
    "--experiment",
    default=TRAINING_EXPERIMENT,
    show_default=True,
    help="MLflow experiment of the run.",
)
@click.option(
    "--tag",
    "tags",
    multiple=True,
    metavar="KEY=VALUE",
    help="Extra tag on the registered version (repeatable).",
)
@click.option(
    "--workers",
    type=click.IntRange(min=1),
    default=None,
    help="Feature-extraction processes (default: every available core).",
)
@click.option(
    "--no-cache", is_flag=True, help="Decode every image again instead of using the feature cache."
)
@json_option
def train_command(
    dataset_dir: Path,
    extra_dirs: tuple[Path, ...],
    eval_dirs: tuple[Path, ...],
    seed: int,
    test_size: float,
    cv_folds: int,
    candidates: tuple[str, ...],
    feature_mode: str,
    min_per_label: int,
    model_name: str | None,
    experiment: str,
    tags: tuple[str, ...],
    workers: int | None,
    no_cache: bool,
    as_json: bool,
) -> None:
    """Train every candidate on DATASET_DIR, log to MLflow and register the best model.

    The new version gets the alias `challenger`, and `champion` too when the model has none.
    Features are cached by image content in the state folder, so retraining is fast.
    Exit status 0: registered; 1: error (dataset, training or registry); 2: invalid usage.
    """
    version_tags = _parse_tags(tags)
    config = TrainConfig(
        dataset_dir=dataset_dir,
        extra_dataset_dirs=list(extra_dirs),
        eval_dirs=list(eval_dirs),
        model_name=model_name,
        seed=seed,
        test_size=test_size,
        cv_folds=cv_folds,
        candidates=candidates or DEFAULTS.candidates,
        feature_mode=FeatureMode(feature_mode),
        min_per_label=min_per_label,
        workers=workers,
        progress=on_terminal(),
        use_cache=not no_cache,
    )
    settings = ArtPulseSettings()
    start = time.perf_counter()
    try:
        result = run_training(settings, config, version_tags=version_tags, experiment=experiment)
    except (DatasetError, TrainingError, MlflowException, RegistryError) as exc:
        raise failure(exc, "log and register the training run", settings) from exc
    _warn_about(result.dataset, dataset_dir)
    output = Output(as_json)
    output.document(training_document(result))
    output.say(format_training(result))
    output.say(f"done in {time.perf_counter() - start:.1f} s")
