"""A real training run into a SQLite MLflow store: versions, aliases, tags, artifacts, reload."""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import mlflow
import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner
from mlflow import MlflowClient

from artpulse_contract.classifier import PROBABILITY_COLUMNS
from artpulse_contract.constants import (
    ALIAS_CHALLENGER,
    ALIAS_CHAMPION,
    FEATURE_NAMES,
    HOLDOUT_ARTIFACT,
    LABELS,
    MODEL_NAME,
    REFERENCE_STATS_ARTIFACT,
)
from artpulse_contract.registry.connection import configure_tracking
from artpulse_contract.registry.lookups import registered_aliases
from artpulse_contract.settings import ArtPulseSettings
from artpulse_jobs.cli import main
from artpulse_jobs.data.datasets import DatasetError
from artpulse_jobs.data.generate import generate_images
from artpulse_jobs.training.candidates import (
    CANDIDATES,
    TIE_TOLERANCE,
    candidate_by_name,
    select_best,
)
from artpulse_jobs.training.train import TrainConfig, TrainResult, run_training
from support.cli_json import validated
from support.training import train_registered_model

pytestmark = pytest.mark.slow


@dataclass
class Trained:
    settings: ArtPulseSettings
    root: Path
    first: TrainResult
    second: TrainResult
    eval_dir: Path


@pytest.fixture(scope="module")
def trained(
    tmp_path_factory: pytest.TempPathFactory, mlflow_db_template: Path
) -> Iterator[Trained]:
    """Two trainings in one fresh registry: the support helper, then one with an eval set."""
    root = tmp_path_factory.mktemp("training")
    (root / "state").mkdir()
    shutil.copyfile(mlflow_db_template, root / "state" / "mlflow.db")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("ARTPULSE_STATE_DIR", str(root / "state"))
        patch.delenv("MLFLOW_TRACKING_URI", raising=False)
        settings = ArtPulseSettings()
        first = train_registered_model(settings, root)
        eval_dir = root / "eval"
        generate_images(eval_dir, per_label=8, size=150, seed=5)
        config = TrainConfig(
            dataset_dir=root / "images-seed0-96px-12",
            eval_dirs=[eval_dir],
            test_size=0.25,
            min_per_label=2,
            cv_folds=3,
        )
        second = run_training(settings, config, version_tags={"artpulse.trigger": "test"})
        yield Trained(settings, root, first, second, eval_dir)


@pytest.fixture
def client(trained: Trained, monkeypatch: pytest.MonkeyPatch) -> MlflowClient:
    monkeypatch.setenv("ARTPULSE_STATE_DIR", str(trained.settings.state_dir))
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    configure_tracking(trained.settings)
    return MlflowClient()


def test_first_version_is_champion_and_challenger(trained: Trained, client: MlflowClient) -> None:
    assert trained.first.version == "1"
    assert sorted(trained.first.aliases) == [ALIAS_CHALLENGER, ALIAS_CHAMPION]
    assert trained.first.model_uri == f"models:/{MODEL_NAME}/1"


def test_second_version_is_only_challenger(trained: Trained, client: MlflowClient) -> None:
    assert trained.second.version == "2"
    assert trained.second.aliases == [ALIAS_CHALLENGER]
    aliases = registered_aliases(client, MODEL_NAME)
    assert aliases == {ALIAS_CHAMPION: "1", ALIAS_CHALLENGER: "2"}


def test_version_tags_hold_metrics_dataset_hash_and_given_tags(
    trained: Trained, client: MlflowClient
) -> None:
    tags = client.get_model_version(MODEL_NAME, "2").tags
    assert float(tags["artpulse.macro_f1"]) == pytest.approx(trained.second.metrics["macro_f1"])
    assert float(tags["artpulse.accuracy"]) == pytest.approx(trained.second.metrics["accuracy"])
    assert tags["artpulse.dataset_hash"] == trained.second.dataset["content_hash"]
    assert tags["artpulse.candidate"] == trained.second.best_candidate
    assert tags["artpulse.trigger"] == "test"
    assert float(tags["artpulse.eval_macro_f1"]) >= 0.95
    assert trained.first.dataset["content_hash"] == trained.second.dataset["content_hash"]


def test_reference_stats_and_holdout_are_artifacts_of_the_versions_run(
    trained: Trained, client: MlflowClient, tmp_path: Path
) -> None:
    version = client.get_model_version(MODEL_NAME, "1")
    assert version.run_id == trained.first.run_id
    run = client.get_run(version.run_id)
    n_train, n_holdout = int(run.data.params["n_train"]), int(run.data.params["n_holdout"])
    assert n_train + n_holdout == 60
    stats_path = mlflow.artifacts.download_artifacts(
        run_id=version.run_id, artifact_path=REFERENCE_STATS_ARTIFACT, dst_path=str(tmp_path)
    )
    stats = json.loads(Path(stats_path).read_text())
    assert stats["n"] == n_train
    assert list(stats["features"]) == list(FEATURE_NAMES)
    for entry in stats["features"].values():
        assert {"mean", "std", "min", "max", "bin_edges", "bin_counts"} <= set(entry)
        assert sum(entry["bin_counts"]) == n_train
    assert list(stats["labels"]) == list(LABELS)
    assert sum(stats["labels"].values()) == n_train
    holdout_path = mlflow.artifacts.download_artifacts(
        run_id=version.run_id, artifact_path=HOLDOUT_ARTIFACT, dst_path=str(tmp_path)
    )
    with np.load(holdout_path) as holdout:
        assert holdout["features"].shape == (n_holdout, 5)
        assert holdout["features"].dtype == np.float32
        assert holdout["labels"].shape == (n_holdout,)
        assert holdout["labels"].dtype == np.int64
        assert np.bincount(holdout["labels"], minlength=5).tolist() == [3, 3, 3, 3, 3]


def test_registered_model_reloads_and_predicts_probabilities(
    trained: Trained, client: MlflowClient, tmp_path: Path
) -> None:
    model = mlflow.pyfunc.load_model(f"models:/{MODEL_NAME}/1")
    holdout_path = mlflow.artifacts.download_artifacts(
        run_id=trained.first.run_id, artifact_path=HOLDOUT_ARTIFACT, dst_path=str(tmp_path)
    )
    with np.load(holdout_path) as holdout:
        features, labels = holdout["features"], holdout["labels"]
    frame = pd.DataFrame(features.astype(np.float64), columns=list(FEATURE_NAMES))
    predictions = model.predict(frame)
    assert list(predictions.columns) == ["label", *PROBABILITY_COLUMNS]
    assert set(predictions["label"]) <= set(LABELS)
    sums = predictions[list(PROBABILITY_COLUMNS)].sum(axis=1).to_numpy()
    np.testing.assert_allclose(sums, 1.0, atol=1e-5)
    accuracy = float(np.mean(predictions["label"].map(LABELS.index).to_numpy() == labels))
    assert accuracy == pytest.approx(trained.first.metrics["accuracy"])
    assert model.metadata.signature is not None
    assert model.metadata.get_input_schema().input_names() == list(FEATURE_NAMES)


def test_each_candidate_has_a_nested_run_with_scores_and_plot(
    trained: Trained, client: MlflowClient
) -> None:
    parent = client.get_run(trained.second.run_id)
    children = client.search_runs(
        [parent.info.experiment_id],
        filter_string=f"tags.`mlflow.parentRunId` = '{trained.second.run_id}'",
    )
    assert sorted(c.data.params["candidate"] for c in children) == sorted(
        c.name for c in CANDIDATES
    )
    for child in children:
        metrics = child.data.metrics
        expected = {"accuracy", "macro_f1", "cv_macro_f1", "eval_macro_f1", "inference_ms"}
        assert expected <= set(metrics)
        assert {f"f1_{label}" for label in LABELS} <= set(metrics)
        assert {f"precision_{label}" for label in LABELS} <= set(metrics)
        artifacts = {a.path for a in client.list_artifacts(child.info.run_id, "evaluation")}
        assert artifacts == {f"evaluation/confusion_{child.data.params['candidate']}.png"}
    dataset = json.loads(
        Path(
            mlflow.artifacts.download_artifacts(
                run_id=trained.second.run_id, artifact_path="dataset.json"
            )
        ).read_text()
    )
    assert dataset["counts"] == {label: 12 for label in LABELS}
    assert dataset["skipped"] == []
    assert parent.data.metrics["eval_macro_f1"] >= 0.95


def test_features_of_a_retrain_come_from_the_cache(trained: Trained) -> None:
    shards = list((trained.settings.state_dir / "feature-cache").rglob("*.npz"))
    assert trained.second.dataset["content_hash"] in {s.stem for s in shards}
    assert trained.second.timings["features"] < trained.first.timings["features"] * 10


def test_cli_train_and_models(trained: Trained, client: MlflowClient) -> None:
    runner = CliRunner()
    result = runner.invoke(
        main,
        [
            "train",
            "--dataset-dir",
            str(trained.root / "images-seed0-96px-12"),
            "--min-per-label",
            "2",
            "--test-size",
            "0.25",
            "--candidate",
            "logistic_regression",
            "--tag",
            "artpulse.trigger=cli",
            "--json",
        ],
    )
    assert result.exit_code == 0, result.output
    assert "logistic_regression" in result.stderr and "<- chosen" in result.stderr
    assert f"registered: models:/{MODEL_NAME}/3  aliases: challenger" in result.stderr
    trained_json = validated(result.stdout, "train")
    assert (trained_json["version"], trained_json["aliases"]) == ("3", [ALIAS_CHALLENGER])
    assert [c["name"] for c in trained_json["candidates"]] == [trained_json["chosen"]]
    assert trained_json["dataset"]["n_images"] == 60
    assert client.get_model_version(MODEL_NAME, "3").tags["artpulse.trigger"] == "cli"
    listing = runner.invoke(main, ["models"])
    assert listing.exit_code == 0, listing.output
    lines = listing.output.splitlines()
    assert lines[2].split()[:2] == ["3", "challenger"]
    assert lines[4].split()[:2] == ["1", "champion"]
    listed = runner.invoke(main, ["models", "--json"])
    as_json = validated(listed.stdout, "models")
    assert "registered model" in listed.stderr and as_json["model"] == MODEL_NAME
    assert [v["version"] for v in as_json["versions"]] == ["3", "2", "1"]
    assert as_json["versions"][2]["aliases"] == [ALIAS_CHAMPION]
    assert as_json["versions"][0]["metrics"]["macro_f1"] == pytest.approx(
        float(as_json["versions"][0]["tags"]["artpulse.macro_f1"]), abs=1e-6
    )


def test_extra_dataset_dirs_are_added_to_the_training_data(
    trained: Trained, client: MlflowClient
) -> None:
    extra = trained.root / "extra"
    generate_images(extra, per_label=3, size=96, seed=9, labels=["surreal", "vibrant"])
    config = TrainConfig(
        dataset_dir=trained.root / "images-seed0-96px-12",
        extra_dataset_dirs=[extra],
        candidates=("logistic_regression",),
        test_size=0.25,
        min_per_label=2,
    )
    result = run_training(trained.settings, config)
    counts = result.dataset["counts"]
    assert counts == {"minimal": 12, "neo-pop": 12, "surreal": 15, "monochrome": 12, "vibrant": 15}
    assert result.dataset["n_images"] == 66
    assert result.dataset["content_hash"] != trained.first.dataset["content_hash"]
    assert result.dataset["extra_datasets"][0]["counts"]["surreal"] == 3
    run = client.get_run(result.run_id)
    assert int(run.data.params["n_train"]) + int(run.data.params["n_holdout"]) == 66
    assert registered_aliases(client, MODEL_NAME)[ALIAS_CHALLENGER] == result.version


def test_cli_train_reports_a_bad_dataset(tmp_path: Path, settings: ArtPulseSettings) -> None:
    generate_images(tmp_path / "tiny", per_label=2, size=32, labels=["minimal", "vibrant"])
    result = CliRunner().invoke(main, ["train", "--dataset-dir", str(tmp_path / "tiny")])
    assert result.exit_code == 1
    assert "'minimal' has 2, 'vibrant' has 2 readable image(s)" in result.output
    assert "needs at least 10" in result.output
    with pytest.raises(DatasetError):
        run_training(settings, TrainConfig(dataset_dir=tmp_path / "tiny"))


def test_selection_prefers_the_cheaper_model_within_the_tie_tolerance() -> None:
    logistic = candidate_by_name("logistic_regression")
    forest = candidate_by_name("random_forest")
    assert select_best([(forest, 0.99), (logistic, 0.99 - TIE_TOLERANCE / 2)]) is logistic
    assert select_best([(forest, 0.99), (logistic, 0.99 - 2 * TIE_TOLERANCE)]) is forest
    with pytest.raises(ValueError, match="unknown candidate 'svm'"):
        candidate_by_name("svm")
