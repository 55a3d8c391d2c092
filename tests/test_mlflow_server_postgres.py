"""The MLflow server exactly as the manifests run it, against a real PostgreSQL.

The server is the session's ``mlflow_server`` (``support.mlflow_server``): command,
arguments and environment from the rendered dev overlay. A model is registered, aliased and
loaded back through the server, and the event store's database URL is built from the same
manifest template.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

import mlflow
import numpy as np
import pytest
import requests
import sqlalchemy as sa
from mlflow.tracking import MlflowClient
from sklearn.linear_model import LogisticRegression

from artpulse_contract.classifier import ArtPulseClassifier
from artpulse_contract.constants import ALIAS_CHAMPION, FEATURE_NAMES, LABELS, MODEL_NAME
from artpulse_contract.events import EventStore, PredictionEvent
from support.kustomize import KUSTOMIZE_DIR, find
from support.mlflow_server import ManifestServer, expand

pytestmark = [pytest.mark.slow, pytest.mark.postgres]


def test_backend_store_uri_is_the_psycopg_url_from_the_manifest(
    mlflow_server: ManifestServer,
) -> None:
    url = sa.make_url(mlflow_server.database_url)
    assert url.drivername == "postgresql+psycopg"
    assert url.database == mlflow_server.container_env["ARTPULSE_MLFLOW_DB"]


def test_a_model_registered_through_the_server_lands_in_postgres_and_the_volume(
    mlflow_server: ManifestServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MLFLOW_TRACKING_URI", mlflow_server.url)
    mlflow.set_tracking_uri(mlflow_server.url)
    mlflow.set_registry_uri(mlflow_server.url)
    client = MlflowClient(tracking_uri=mlflow_server.url, registry_uri=mlflow_server.url)
    experiment = client.create_experiment(f"packaging-{uuid.uuid4().hex[:6]}")
    rng = np.random.default_rng(0)
    features = rng.random((30, len(FEATURE_NAMES))).astype(np.float32)
    labels = np.arange(30) % len(LABELS)
    estimator = LogisticRegression(max_iter=200).fit(features, labels)
    with mlflow.start_run(experiment_id=experiment):
        info = mlflow.pyfunc.log_model(
            name="model",
            python_model=ArtPulseClassifier(estimator),
            pip_requirements=["scikit-learn", "mlflow"],
            registered_model_name=MODEL_NAME,
        )
    assert info.registered_model_version is not None
    version = str(info.registered_model_version)
    client.set_registered_model_alias(MODEL_NAME, ALIAS_CHAMPION, version)

    # Artifacts go through the server (mlflow-artifacts:/), onto its artifact folder.
    run = client.get_run(info.run_id)
    assert run.info.artifact_uri.startswith("mlflow-artifacts:/")
    assert list((mlflow_server.artifacts / experiment).rglob("MLmodel"))
    # The registry rows are in PostgreSQL.
    engine = sa.create_engine(mlflow_server.database_url)
    with engine.connect() as connection:
        aliases = connection.execute(
            sa.text("SELECT alias, version FROM registered_model_aliases WHERE name = :name"),
            {"name": MODEL_NAME},
        ).all()
    engine.dispose()
    assert [(a, str(v)) for a, v in aliases] == [(ALIAS_CHAMPION, version)]
    # And a client loads the pinned version back, as a serving pod does.
    loaded = mlflow.pyfunc.load_model(f"models:/{MODEL_NAME}/{version}")
    predictions = loaded.predict(features[:4])
    assert list(predictions["label"]) == [LABELS[i] for i in estimator.predict(features[:4])]


@pytest.mark.parametrize(
    ("host", "allowed"),
    [
        ("artpulse-mlflow:5000", True),
        ("artpulse-mlflow.artpulse.svc.cluster.local:5000", True),
        ("evil.example.com", False),
    ],
)
def test_allowed_hosts_admit_the_service_names_only(
    mlflow_server: ManifestServer, host: str, allowed: bool
) -> None:
    response = requests.get(
        f"{mlflow_server.url}/api/2.0/mlflow/experiments/search",
        params={"max_results": 1},
        headers={"Host": host},
        timeout=10,
    )
    assert (response.status_code == 200) is allowed, (host, response.status_code, response.text)


def test_event_store_url_from_the_manifest_works_on_the_init_database(
    mlflow_server: ManifestServer, postgres_url: str
) -> None:
    # The postgres StatefulSet runs postgres-init.sql once at initialisation; run it here, then
    # build ARTPULSE_EVENTS_URL from the serving Deployment's template and write through it.
    init_sql = (KUSTOMIZE_DIR / "base" / "postgres-init.sql").read_text()
    statements = [s.strip() for s in init_sql.split(";") if s.strip() and "CREATE" in s]
    engine = sa.create_engine(postgres_url, isolation_level="AUTOCOMMIT")
    with engine.connect() as connection:
        exists = connection.execute(
            sa.text("SELECT 1 FROM pg_database WHERE datname = :name"),
            {"name": mlflow_server.container_env["ARTPULSE_EVENTS_DB"]},
        ).first()
        if exists is None:
            for statement in statements:
                lines = [ln for ln in statement.splitlines() if not ln.strip().startswith("--")]
                connection.execute(sa.text("\n".join(lines)))
    engine.dispose()
    runtime = find(mlflow_server.rendered, "Deployment", "artpulse-runtime")
    template = next(
        v["value"]
        for v in runtime["spec"]["template"]["spec"]["containers"][0]["env"]
        if v["name"] == "ARTPULSE_EVENTS_URL"
    )
    store = EventStore(expand(template, mlflow_server.container_env))
    event = PredictionEvent(
        timestamp=datetime.now(UTC),
        request_id="packaging-test",
        model_name=MODEL_NAME,
        model_version="1",
        input_kind="features",
        features=(0.1, 0.2, 0.3, 0.4, 0.5),
        label=LABELS[0],
        probabilities=(0.6, 0.1, 0.1, 0.1, 0.1),
    )
    try:
        before = store.count()
        store.write([event])
        assert store.count() == before + 1
    finally:
        store.close()
