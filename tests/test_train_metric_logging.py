"""A training logs each metric once: no row the backend store must reject as a duplicate.

MLflow's metrics table has the primary key (key, timestamp, step, run, value): a second write
of the same point is an IntegrityError that the SQLAlchemy store swallows and retries, which
SQLite hides and PostgreSQL logs (``duplicate key value violates unique constraint
"metric_pk"``, seen in the cluster). ``log_model`` copies the run's metrics logged so far onto
the model, so logging them before the model wrote every point twice. The store's ``log_batch``
is wrapped to record every metric point it receives, then passed through to the real store.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest
from mlflow import MlflowClient
from mlflow.entities import Metric
from mlflow.store.tracking.sqlalchemy_store import SqlAlchemyStore

from artpulse_contract.settings import ArtPulseSettings
from support.training import train_registered_model

pytestmark = pytest.mark.slow


def test_training_writes_each_metric_point_once_and_links_it_to_the_model(
    settings: ArtPulseSettings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    points: Counter[tuple[str, str, int, int, float]] = Counter()
    real_log_batch = SqlAlchemyStore.log_batch

    def recording_log_batch(
        self: SqlAlchemyStore, run_id: str, metrics: list[Metric], *args: object, **kwargs: object
    ) -> None:
        for metric in metrics:
            points[(run_id, metric.key, metric.step, metric.timestamp, metric.value)] += 1
        real_log_batch(self, run_id, metrics, *args, **kwargs)

    monkeypatch.setattr(SqlAlchemyStore, "log_batch", recording_log_batch)
    result = train_registered_model(settings, tmp_path)

    assert points, "the training logged no metrics through the store"
    duplicates = {point: n for point, n in points.items() if n > 1}
    assert duplicates == {}
    client = MlflowClient(settings.resolved_tracking_uri)
    run = client.get_run(result.run_id)
    assert "macro_f1" in run.data.metrics
    (model_output,) = run.outputs.model_outputs
    model_metrics = client.get_logged_model(model_output.model_id).metrics or []
    assert {metric.key for metric in model_metrics} == set(run.data.metrics)
