"""A model's feature mode end to end: recorded by training (run, version, pyfunc), followed by
a real server, by drift (like with like), by retraining and by the gate's images folder."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import mlflow
import numpy as np
import pytest
import requests
from click.testing import CliRunner
from mlflow import MlflowClient
from PIL import Image

from artpulse_contract.constants import ALIAS_CHAMPION, MODEL_NAME, FeatureMode
from artpulse_contract.features import extract_features
from artpulse_contract.registry import tags
from artpulse_contract.settings import ArtPulseSettings
from artpulse_jobs.cli import main
from artpulse_jobs.data.datasets import load_image_dataset
from artpulse_jobs.data.generate import generate_images
from artpulse_jobs.monitoring.drift import run_drift
from artpulse_jobs.monitoring.retrain import champion_feature_mode
from artpulse_jobs.promotion.gate import GateError
from artpulse_jobs.promotion.promote import promote
from artpulse_jobs.serving.client import predict_images_grpc, predict_images_rest
from artpulse_jobs.serving.server import server_on_free_ports
from artpulse_jobs.training.evaluation import evaluate
from support.monitoring import module_settings, quick_training, write_events

pytestmark = pytest.mark.slow


def jpeg_dataset(folder: Path, per_label: int, size: int, seed: int) -> Path:
    """Generated images of every style re-encoded as JPEG (large enough for draft to reduce)."""
    for path in generate_images(folder, per_label, size=size, seed=seed):
        with Image.open(path) as image:
            image.convert("RGB").save(path.with_suffix(".jpg"), quality=90)
        path.unlink()
    return folder


@dataclass(frozen=True)
class TwoModes:
    settings: ArtPulseSettings
    exact: str
    """Version trained with the default mode (``exact``)."""
    draft: str
    """Version trained with ``artpulse train --feature-mode draft``."""
    eval_dir: Path


@pytest.fixture(scope="module")
def two_modes(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TwoModes]:
    root = tmp_path_factory.mktemp("feature-modes")
    with module_settings(root) as settings:
        dataset = jpeg_dataset(root / "train", 12, size=384, seed=0)
        exact = quick_training(settings, dataset).version
        outcome = CliRunner().invoke(
            main,
            [
                *("train", "--dataset-dir", str(dataset), "--feature-mode", "draft"),
                *("--candidate", "logistic_regression", "--min-per-label", "2", "--workers", "1"),
            ],
        )
        assert outcome.exit_code == 0, outcome.output
        draft = str(int(exact) + 1)
        assert f"Created version '{draft}'" in outcome.output
        eval_dir = jpeg_dataset(root / "eval", 4, size=512, seed=1)
        yield TwoModes(settings, exact, draft, eval_dir)


def test_training_records_the_mode_on_the_run_the_version_and_the_pyfunc(
    two_modes: TwoModes,
) -> None:
    client = MlflowClient()
    for version, mode in ((two_modes.exact, "exact"), (two_modes.draft, "draft")):
        registered = client.get_model_version(MODEL_NAME, version)
        assert registered.tags[tags.FEATURE_MODE] == mode
        run = client.get_run(str(registered.run_id))
        assert run.data.tags[tags.FEATURE_MODE] == mode
        assert run.data.params["feature_mode"] == mode
        model = mlflow.pyfunc.load_model(f"models:/{MODEL_NAME}/{version}")
        assert model.unwrap_python_model().feature_mode == FeatureMode(mode)


def test_a_draft_model_is_served_in_draft_mode(two_modes: TwoModes) -> None:
    images = [path.read_bytes() for path in sorted(two_modes.eval_dir.rglob("*.jpg"))[:3]]
    draft = np.stack([extract_features(data, mode=FeatureMode.DRAFT) for data in images])
    exact = np.stack([extract_features(data) for data in images])
    assert not np.allclose(draft, exact, atol=1e-6)
    served = ((two_modes.draft, draft, "draft"), (two_modes.exact, exact, "exact"))
    for version, expected, mode in served:
        uri = f"models:/{MODEL_NAME}/{version}"
        with server_on_free_ports(two_modes.settings, model_uri=uri) as server:
            rest = predict_images_rest(server.http_url, images)
            grpc = predict_images_grpc(server.grpc_target, images)
            metadata = requests.get(f"{server.http_url}/v2/models/{MODEL_NAME}", timeout=10)
        assert rest.model_version == grpc.model_version == version
        np.testing.assert_array_equal(rest.features, expected)
        np.testing.assert_array_equal(grpc.features, expected)
        assert metadata.json()["parameters"]["feature_mode"] == mode


def test_drift_names_the_mode_and_reads_only_versions_of_that_mode(
    two_modes: TwoModes, tmp_path: Path
) -> None:
    url = f"sqlite:///{tmp_path / 'events.db'}"
    settings = two_modes.settings.model_copy(update={"events_url": url})
    dataset = load_image_dataset(two_modes.eval_dir, 1, feature_mode=FeatureMode.DRAFT, workers=1)
    rows = np.repeat(dataset.features, 8, axis=0)
    labels = np.repeat(dataset.labels, 8)
    write_events(url, rows, labels, two_modes.draft)
    write_events(url, rows[:50], labels[:50], two_modes.exact)
    write_events(url, rows[:30], labels[:30], "an-unregistered-version")
    result = run_drift(settings, version=two_modes.draft, all_versions=True)
    report = result.report
    assert report["model"]["feature_mode"] == "draft"
    assert report["counts"]["events"] == len(rows) + 30  # not the exact version's 50
    assert report["window"]["model_version"] == (
        f"all but the versions in another feature mode ({two_modes.exact})"
    )
    assert "(draft features)" in result.html_path.read_text()
    assert MlflowClient().get_run(result.run_id).data.tags[tags.FEATURE_MODE] == "draft"
    own = run_drift(settings, version=two_modes.exact).report
    assert own["model"]["feature_mode"] == "exact" and own["counts"]["events"] == 50


def test_retraining_keeps_the_champions_mode(two_modes: TwoModes) -> None:
    client = MlflowClient()
    before = client.get_model_version_by_alias(MODEL_NAME, ALIAS_CHAMPION).version
    try:
        for version, mode in ((two_modes.exact, "exact"), (two_modes.draft, "draft")):
            client.set_registered_model_alias(MODEL_NAME, ALIAS_CHAMPION, version)
            assert champion_feature_mode(two_modes.settings) is FeatureMode(mode)
    finally:
        client.set_registered_model_alias(MODEL_NAME, ALIAS_CHAMPION, before)


def test_the_gate_scores_each_version_on_the_folder_in_its_own_mode(
    two_modes: TwoModes,
) -> None:
    client = MlflowClient()
    client.set_registered_model_alias(MODEL_NAME, ALIAS_CHAMPION, two_modes.exact)
    outcome = promote(two_modes.settings, version=two_modes.draft, eval_dir=two_modes.eval_dir)
    assert outcome.run_id is not None
    run = client.get_run(outcome.run_id)
    folder = two_modes.eval_dir.resolve()
    assert run.data.params["evaluation_source"] == f"images folder {folder} (draft features)"
    assert run.data.params["champion_evaluation_source"] == (
        f"images folder {folder} (exact features)"
    )
    for version, mode, metric in (
        (two_modes.draft, FeatureMode.DRAFT, "candidate_macro_f1"),
        (two_modes.exact, FeatureMode.EXACT, "champion_macro_f1"),
    ):
        dataset = load_image_dataset(two_modes.eval_dir, 1, feature_mode=mode, workers=1)
        model = mlflow.pyfunc.load_model(f"models:/{MODEL_NAME}/{version}").unwrap_python_model()
        predicted = model.predict_proba(dataset.features).argmax(axis=1)
        assert run.data.metrics[metric] == pytest.approx(
            evaluate(dataset.labels, predicted).macro_f1
        )


def test_without_a_folder_the_gate_refuses_to_grade_across_modes(two_modes: TwoModes) -> None:
    client = MlflowClient()
    client.set_registered_model_alias(MODEL_NAME, ALIAS_CHAMPION, two_modes.exact)
    with pytest.raises(GateError, match=r"in draft mode, champion .* in exact mode.*--eval-dir"):
        promote(two_modes.settings, version=two_modes.draft)
    champion = client.get_model_version_by_alias(MODEL_NAME, ALIAS_CHAMPION)
    assert str(champion.version) == two_modes.exact
