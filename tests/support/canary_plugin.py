"""Fixtures of the operator's canary tests (``test_operator_canary*.py``): a real API server
(local-cluster) with the CRD, a real SQLite MLflow registry with 4 versions and a real event
store (a SQLite file) per module; a fresh namespace with champion 1 per test. Their helpers are
``support.canary_cluster``.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from kubernetes import client as k8s
from kubernetes import config as k8s_config
from mlflow.tracking import MlflowClient

from artpulse_contract.constants import (
    ALIAS_CHALLENGER,
    ALIAS_PREVIOUS_CHAMPION,
    MODEL_NAME,
)
from artpulse_contract.events import EventStore
from artpulse_contract.registry.lookups import registered_aliases
from support.operator_cluster import (
    apply_crd,
    create_namespace,
    delete_namespace,
    register_versions,
)
from support.operator_session import Cluster


@pytest.fixture(scope="module")
def setup(kubeconfig: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    """The CRD applied, a registry with 4 versions and an event store (the operator per test)."""
    k8s_config.load_kube_config(config_file=kubeconfig)
    apply_crd()
    folder = tmp_path_factory.mktemp("canary")
    registry_uri = register_versions(folder / "registry", 4)
    events_url = f"sqlite:///{folder / 'events.db'}"
    store = EventStore(events_url)
    yield {"registry_uri": registry_uri, "events_url": events_url, "store": store}
    store.close()


@pytest.fixture
def kube(setup: dict[str, Any]) -> Iterator[Cluster]:
    """A fresh namespace and champion 1; resources released by the test's operator."""
    uri = setup["registry_uri"]
    cluster = Cluster(
        k8s.CoreV1Api(),
        k8s.AppsV1Api(),
        k8s.CustomObjectsApi(),
        uri,
        MlflowClient(tracking_uri=uri, registry_uri=uri),
        0,
    )
    cluster.namespace = create_namespace(cluster.core, "apm-canary")
    for alias in (ALIAS_CHALLENGER, ALIAS_PREVIOUS_CHAMPION):
        if alias in registered_aliases(cluster.registry, MODEL_NAME):
            cluster.registry.delete_registered_model_alias(MODEL_NAME, alias)
    cluster.set_alias("1")
    try:
        yield cluster
    finally:
        delete_namespace(cluster.core, cluster.namespace)
