"""Fixtures shared by every test module."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from mlflow import MlflowClient

from artpulse_contract.registry.connection import configure_tracking
from artpulse_contract.settings import ArtPulseSettings
from support.environment import require_or_skip
from support.mlflow_server import ManifestServer, manifest_mlflow_server
from support.postgres import create_database, postgres_available, running_postgres

SERVICE_FIXTURES = {"postgres_url": "postgres", "kubeconfig": "k8s", "mlflow_server": "slow"}
"""Fixtures that start or need an outside service, and the marker a test using them must carry."""


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Refuse to run a test that uses a service fixture without that fixture's marker.

    ``-m "not k8s"`` or ``-m "not slow"`` must deselect every test that needs the service,
    so a missing marker is a usage error naming the test, not a silent skip or a slow run.
    """
    missing = [
        f"{item.nodeid} uses the {fixture!r} fixture but is not marked {marker!r}"
        for item in items
        for fixture, marker in SERVICE_FIXTURES.items()
        if fixture in getattr(item, "fixturenames", ()) and item.get_closest_marker(marker) is None
    ]
    if missing:
        raise pytest.UsageError("\n".join(missing))


@pytest.fixture(scope="session")
def mlflow_db_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An empty MLflow SQLite store with every schema migration applied, made once.

    Creating a store runs MLflow's migrations: 7-9 s on a busy two-core machine. Tests copy
    this file into their own state folder instead: still a fresh, real store each time.
    """
    path = tmp_path_factory.mktemp("mlflow-template") / "mlflow.db"
    MlflowClient(tracking_uri=f"sqlite:///{path}").search_experiments()
    return path


@pytest.fixture
def settings(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, mlflow_db_template: Path
) -> ArtPulseSettings:
    """Settings on a fresh state folder (SQLite registry and events) in ``tmp_path``.

    The environment is set too, so commands and subprocesses started by the test agree.
    """
    state_dir = tmp_path / "state"
    state_dir.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(mlflow_db_template, state_dir / "mlflow.db")
    monkeypatch.setenv("ARTPULSE_STATE_DIR", str(state_dir))
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    monkeypatch.delenv("ARTPULSE_EVENTS_URL", raising=False)
    monkeypatch.delenv("ARTPULSE_MODEL_URI", raising=False)
    result = ArtPulseSettings()
    configure_tracking(result)
    return result


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    """A SQLAlchemy URL to a throwaway PostgreSQL database (skip, or fail in CI, if absent)."""
    if not postgres_available():
        require_or_skip("REQUIRE_POSTGRES", "PostgreSQL 15 server binaries are not installed")
    with running_postgres() as url:
        yield url


@pytest.fixture
def fresh_postgres_url(postgres_url: str) -> str:
    """A URL to a new, empty database on the session's PostgreSQL server (one per test)."""
    return create_database(postgres_url)


@pytest.fixture(scope="session")
def mlflow_server(
    postgres_url: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ManifestServer]:
    """One ``mlflow server`` per session, as the manifests run it: PostgreSQL backend store,
    artifacts proxied to its ``--artifacts-destination`` folder. Tests that share it keep
    apart by model and experiment names."""
    with manifest_mlflow_server(postgres_url, tmp_path_factory.mktemp("mlflow-server")) as server:
        yield server


@pytest.fixture(scope="session")
def kubeconfig() -> str:
    """Path of the kubeconfig of a live API server (skip, or fail in CI, if unset)."""
    path = os.environ.get("KUBECONFIG")
    if not path:
        require_or_skip("REQUIRE_K8S", "no Kubernetes API server (KUBECONFIG is unset)")
    return str(path)
