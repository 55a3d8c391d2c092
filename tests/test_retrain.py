"""``artpulse retrain`` on a real registry and event store: quiet without drift, a tagged
challenger with drift or ``--force``."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from mlflow import MlflowClient

from artpulse_contract.constants import ALIAS_CHALLENGER, ALIAS_CHAMPION, LABELS, MODEL_NAME
from artpulse_contract.registry import tags
from artpulse_contract.registry.lookups import registered_aliases
from artpulse_contract.settings import ArtPulseSettings
from artpulse_jobs.cli import main
from artpulse_jobs.data.generate import generate_images
from artpulse_jobs.monitoring.retrain import RetrainError, dataset_folder, retrain
from support.cli_json import validated
from support.monitoring import trained_champion, write_events

pytestmark = pytest.mark.slow


@dataclass
class Champion:
    settings: ArtPulseSettings
    version: str
    dataset_dir: Path
    features: np.ndarray
    labels: np.ndarray
    new_data: Path


@pytest.fixture(scope="module")
def champion(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Champion]:
    root = tmp_path_factory.mktemp("retrain")
    with trained_champion(root) as trained:
        new_data = root / "newly-labelled"
        generate_images(new_data, 6, size=96, seed=9, labels=("vibrant", "neo-pop"))
        yield Champion(
            trained.settings,
            trained.version,
            trained.dataset_dir,
            trained.features,
            trained.labels,
            new_data,
        )


@pytest.fixture
def events_url(champion: Champion, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    url = f"sqlite:///{tmp_path / 'events.db'}"
    monkeypatch.setenv("ARTPULSE_STATE_DIR", str(champion.settings.state_dir))
    monkeypatch.setenv("ARTPULSE_EVENTS_URL", url)
    return url


def versions(client: MlflowClient) -> set[str]:
    return {str(v.version) for v in client.search_model_versions(f"name = '{MODEL_NAME}'")}


def test_no_drift_does_nothing(champion: Champion, events_url: str) -> None:
    index = np.random.default_rng(0).integers(0, champion.labels.size, 400)
    write_events(
        events_url,
        champion.features[index],
        champion.labels[index],
        champion.version,
        request_id="retrain-test",
        input_kind="image",
    )
    before = versions(MlflowClient())
    result = CliRunner().invoke(main, ["retrain", "--new-data-dir", str(champion.new_data)])
    assert result.exit_code == 0, result.output
    assert "no retraining: no_drift" in result.output
    quiet = CliRunner().invoke(main, ["retrain", "--json"])
    document = validated(quiet.stdout, "retrain")
    assert not document["retrained"] and document["training"] is None
    assert document["drift"]["verdict"] == "no_drift"
    assert versions(MlflowClient()) == before


def test_drift_registers_a_challenger_tagged_with_the_drift_run(
    champion: Champion, events_url: str, tmp_path: Path
) -> None:
    vibrant = champion.labels == LABELS.index("vibrant")
    rows = np.repeat(champion.features[vibrant], 8, axis=0)
    write_events(
        events_url,
        rows,
        np.full(len(rows), LABELS.index("vibrant")),
        champion.version,
        request_id="retrain-test",
        input_kind="image",
    )
    result = CliRunner().invoke(
        main,
        [
            "retrain",
            "--new-data-dir",
            str(champion.new_data),
            "--output-dir",
            str(tmp_path),
            "--json",
        ],
    )
    assert result.exit_code == 0, result.output
    report = json.loads((tmp_path / "drift_report.json").read_text())
    assert report["verdict"] == "drift"
    document = validated(result.stdout, "retrain")
    assert document["retrained"] and document["drift"]["run_id"] == report["mlflow_run_id"]
    assert document["drift_verdict"] == "drift" and document["drift"]["verdict"] == "drift"
    client = MlflowClient()
    challenger = registered_aliases(client, MODEL_NAME)[ALIAS_CHALLENGER]
    assert registered_aliases(client, MODEL_NAME)[ALIAS_CHAMPION] == champion.version
    assert challenger != champion.version
    recorded = client.get_model_version(MODEL_NAME, challenger).tags
    assert recorded[tags.RETRAIN_DRIFT_RUN] == report["mlflow_run_id"]
    assert recorded[tags.RETRAIN_REASON] == "drift"
    run = client.get_run(str(client.get_model_version(MODEL_NAME, challenger).run_id))
    assert run.data.params["n_train"] != "0"
    assert f"version {challenger} registered" in result.stderr
    assert document["training"]["version"] == challenger
    dataset = json.loads(
        Path(client.download_artifacts(run.info.run_id, "dataset.json")).read_text()
    )
    assert [extra["path"] for extra in dataset["extra_datasets"]] == [str(champion.new_data)]


def test_force_retrains_from_a_quiet_report(champion: Champion, tmp_path: Path) -> None:
    report = {"verdict": "no_drift", "summary": "no_drift over 500 events", "mlflow_run_id": "r1"}
    assert not retrain(champion.settings, report).retrained
    outcome = retrain(champion.settings, report, force=True, new_data_dirs=[tmp_path / "none"])
    assert outcome.retrained and outcome.result is not None
    recorded = MlflowClient().get_model_version(MODEL_NAME, outcome.result.version).tags
    assert recorded[tags.RETRAIN_REASON] == "forced" and recorded[tags.RETRAIN_DRIFT_RUN] == "r1"
    assert any("missing or empty" in note for note in outcome.notes)


def test_dataset_folder_defaults_to_the_champions_and_errors_name_the_folder(
    champion: Champion, tmp_path: Path
) -> None:
    assert dataset_folder(champion.settings, None) == champion.dataset_dir
    with pytest.raises(RetrainError, match="nowhere"):
        dataset_folder(champion.settings, tmp_path / "nowhere")
    broken = tmp_path / "report.json"
    broken.write_text("[1, 2]")
    result = CliRunner().invoke(main, ["retrain", "--report", str(broken)])
    assert result.exit_code == 1 and "not a drift report" in result.output
    result = CliRunner().invoke(main, ["retrain", "--model-version", "999"])
    assert result.exit_code == 1 and "drift check failed" in result.output
