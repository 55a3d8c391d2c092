"""The MLflow server exactly as the manifests run it, against a real PostgreSQL.

The command, arguments and environment come from the rendered dev overlay; only what differs
outside a cluster is substituted (the database address and credentials, the listen address,
the port and the artifact folder). A model is registered, aliased and loaded back through the
server, and the event store's database URL is built from the same manifest template.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import mlflow
import numpy as np
import pytest
import requests
import sqlalchemy as sa
from mlflow.tracking import MlflowClient
from sklearn.linear_model import LogisticRegression

from artpulse_runtime.classifier import ArtPulseClassifier
from artpulse_runtime.constants import ALIAS_CHAMPION, FEATURE_NAMES, LABELS, MODEL_NAME
from artpulse_runtime.events import EventStore, PredictionEvent
from support.environment import free_port
from support.kustomize import KUSTOMIZE_DIR, Obj, find, render_overlay
from support.polling import wait_for

pytestmark = [pytest.mark.slow, pytest.mark.postgres]

VARIABLE = re.compile(r"\$\(([A-Za-z_][A-Za-z0-9_]*)\)")


def expand(text: str, env: dict[str, str]) -> str:
    """Expand ``$(VAR)`` references the way the kubelet does (unknown ones stay as they are)."""
    return VARIABLE.sub(lambda m: env.get(m.group(1), m.group(0)), text)


def _option(args: list[str], name: str) -> str:
    return args[args.index(name) + 1]


def _replace_option(args: list[str], name: str, value: str) -> list[str]:
    changed = list(args)
    changed[args.index(name) + 1] = value
    return changed


@dataclass
class Server:
    """A running tracking server and what it was started with."""

    url: str
    artifacts: Path
    database_url: str
    container_env: dict[str, str]


@pytest.fixture(scope="module")
def rendered(tmp_path_factory: pytest.TempPathFactory) -> list[Obj]:
    """The dev overlay's objects."""
    return render_overlay("dev", tmp_path_factory.mktemp("mlflow-render"))


@pytest.fixture(scope="module")
def server(
    rendered: list[Obj], postgres_url: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Server]:
    """``mlflow server`` started from the manifest's command line on a fresh database."""
    deployment = find(rendered, "Deployment", "artpulse-mlflow")
    container = deployment["spec"]["template"]["spec"]["containers"][0]
    config = next(o for o in rendered if o["metadata"]["name"].startswith("artpulse-config"))
    postgres = sa.make_url(postgres_url)
    database = f"mlflow_{uuid.uuid4().hex[:8]}"
    # The values a pod gets from the ConfigMap and the Secret, pointed at the test server.
    env = {
        **config["data"],
        "POSTGRES_USER": str(postgres.username),
        "POSTGRES_PASSWORD": "unused-with-trust-auth",
        "ARTPULSE_DB_HOST": str(postgres.host),
        "ARTPULSE_DB_PORT": str(postgres.port),
        "ARTPULSE_MLFLOW_DB": database,
    }
    for variable in container["env"]:
        if "value" in variable:
            env[variable["name"]] = expand(variable["value"], env)
    engine = sa.create_engine(postgres_url, isolation_level="AUTOCOMMIT")
    with engine.connect() as connection:
        # What the postgres image's entrypoint does for POSTGRES_DB.
        connection.execute(sa.text(f'CREATE DATABASE "{database}"'))
    engine.dispose()

    artifacts = tmp_path_factory.mktemp("mlartifacts")
    port = free_port()
    args = [expand(arg, env) for arg in container["args"]]
    args = _replace_option(args, "--artifacts-destination", str(artifacts))
    args = _replace_option(args, "--host", "127.0.0.1")
    args = _replace_option(args, "--port", str(port))
    program = Path(sys.executable).parent / container["command"][0]
    process_env = {**os.environ, **{k: v for k, v in env.items() if k not in ("HOME", "TMPDIR")}}
    process_env.pop("MLFLOW_TRACKING_URI", None)
    log = (tmp_path_factory.mktemp("mlflow-log") / "server.log").open("w")
    process = subprocess.Popen(
        [str(program), *container["command"][1:], *args],
        env=process_env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"

    def healthy() -> bool:
        if process.poll() is not None:
            raise AssertionError(f"mlflow server exited with {process.returncode}: see {log.name}")
        try:
            return requests.get(f"{url}/health", timeout=2).status_code == 200
        except requests.ConnectionError:
            return False

    try:
        wait_for("mlflow server /health", healthy, 120)
        yield Server(url, artifacts, _option(args, "--backend-store-uri"), env)
    finally:
        process.terminate()
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        log.close()


def test_backend_store_uri_is_the_psycopg_url_from_the_manifest(server: Server) -> None:
    url = sa.make_url(server.database_url)
    assert url.drivername == "postgresql+psycopg"
    assert url.database == server.container_env["ARTPULSE_MLFLOW_DB"]


def test_a_model_registered_through_the_server_lands_in_postgres_and_the_volume(
    server: Server, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MLFLOW_TRACKING_URI", server.url)
    mlflow.set_tracking_uri(server.url)
    mlflow.set_registry_uri(server.url)
    client = MlflowClient(tracking_uri=server.url, registry_uri=server.url)
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
    assert list(server.artifacts.rglob("MLmodel"))
    # The registry rows are in PostgreSQL.
    engine = sa.create_engine(server.database_url)
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
    server: Server, host: str, allowed: bool
) -> None:
    response = requests.get(
        f"{server.url}/api/2.0/mlflow/experiments/search",
        params={"max_results": 1},
        headers={"Host": host},
        timeout=10,
    )
    assert (response.status_code == 200) is allowed, (host, response.status_code, response.text)


def test_event_store_url_from_the_manifest_works_on_the_init_database(
    server: Server, rendered: list[Obj], postgres_url: str
) -> None:
    # The postgres StatefulSet runs postgres-init.sql once at initialisation; run it here, then
    # build ARTPULSE_EVENTS_URL from the serving Deployment's template and write through it.
    init_sql = (KUSTOMIZE_DIR / "base" / "postgres-init.sql").read_text()
    statements = [s.strip() for s in init_sql.split(";") if s.strip() and "CREATE" in s]
    engine = sa.create_engine(postgres_url, isolation_level="AUTOCOMMIT")
    with engine.connect() as connection:
        exists = connection.execute(
            sa.text("SELECT 1 FROM pg_database WHERE datname = :name"),
            {"name": server.container_env["ARTPULSE_EVENTS_DB"]},
        ).first()
        if exists is None:
            for statement in statements:
                lines = [ln for ln in statement.splitlines() if not ln.strip().startswith("--")]
                connection.execute(sa.text("\n".join(lines)))
    engine.dispose()
    runtime = find(rendered, "Deployment", "artpulse-runtime")
    template = next(
        v["value"]
        for v in runtime["spec"]["template"]["spec"]["containers"][0]["env"]
        if v["name"] == "ARTPULSE_EVENTS_URL"
    )
    store = EventStore(expand(template, server.container_env))
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
