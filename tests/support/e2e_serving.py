"""What the e2e checks on the serving side: which version each runtime pod answers with, a
rollout reaching every pod, the runtime pods' history, and the events in PostgreSQL."""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Iterable
from contextlib import ExitStack
from dataclasses import dataclass, field

import requests
import sqlalchemy as sa
from mlflow import MlflowClient

from artpulse_contract.constants import MODEL_NAME, MODEL_URI_ENV
from artpulse_contract.events import EventStore
from artpulse_contract.events.schema import prediction_events
from artpulse_jobs.serving.client import features_request_json, prediction_from_json
from support.e2e_cluster import Cluster, is_ready, port_forward
from support.e2e_platform import RUNTIME
from support.polling import wait_for

PINNED_URI = re.compile(rf"^models:/{re.escape(MODEL_NAME)}/\d+$")
HTTP_PORT = 8080


def answered_version(pod_ip: str) -> str:
    """The ``model_version`` a runtime pod answers a feature row with, asked directly."""
    body = features_request_json([[0.3, 0.45, 0.6, 0.25, 0.1]])
    url = f"http://{pod_ip}:{HTTP_PORT}/v2/models/{MODEL_NAME}/infer"
    response = requests.post(url, json=body, timeout=10)
    response.raise_for_status()
    return prediction_from_json(response.json()).model_version


def serving_versions(cluster: Cluster) -> dict[str, str] | None:
    """Pod name -> version answered, for every runtime pod behind the Service, once the
    Deployment reports its rollout complete (None before)."""
    deployment = cluster.get("deployment", RUNTIME)
    status, wanted = deployment.get("status", {}), deployment["spec"]["replicas"]
    complete = (
        status.get("observedGeneration") == deployment["metadata"]["generation"]
        and status.get("updatedReplicas") == wanted
        and status.get("readyReplicas") == wanted
        and status.get("availableReplicas") == wanted
        and status.get("replicas") == wanted
    )
    if not complete:
        return None
    serving = [pod for pod in cluster.pods(RUNTIME) if is_ready(pod)]
    if len(serving) != wanted:
        return None
    return {pod["metadata"]["name"]: answered_version(pod["status"]["podIP"]) for pod in serving}


def wait_all_serving(cluster: Cluster, version: str, timeout: float) -> float:
    """Wait until the rollout is complete and every serving pod answers with ``version``;
    return the seconds it took."""
    start = time.monotonic()

    def all_on_version() -> bool:
        cluster.assert_no_crash_loop()
        versions = serving_versions(cluster)
        return bool(versions) and set(versions.values()) == {version}  # type: ignore[union-attr]

    wait_for(f"every runtime pod to serve version {version}", all_on_version, timeout, 1.0)
    return time.monotonic() - start


def pinned_uris(cluster: Cluster) -> dict[str, str]:
    """ReplicaSet name -> the model URI its pod template gives the runtime container."""
    uris = {}
    for replica_set in cluster.items("replicaset", f"app.kubernetes.io/name={RUNTIME}"):
        container = replica_set["spec"]["template"]["spec"]["containers"][0]
        env = {e["name"]: e.get("value", "") for e in container.get("env", [])}
        uris[replica_set["metadata"]["name"]] = env.get(MODEL_URI_ENV, "")
    return uris


@dataclass
class PodSample:
    """One runtime pod as seen at one moment."""

    at: float
    """Wall-clock time (seconds since the epoch)."""
    name: str
    phase: str
    ready: bool
    restarts: int
    model_uri: str


@dataclass
class RuntimePodWatch:
    """Samples the runtime pods every second in a background thread."""

    cluster: Cluster
    samples: list[PodSample] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                pods = self.cluster.pods(RUNTIME)
            except AssertionError:
                pods = []
            now = time.time()
            for pod in pods:
                container = pod["spec"]["containers"][0]
                env = {e["name"]: e.get("value", "") for e in container.get("env", [])}
                statuses = pod.get("status", {}).get("containerStatuses") or [{}]
                self.samples.append(
                    PodSample(now, pod["metadata"]["name"], pod.get("status", {}).get("phase", ""),
                              is_ready(pod), int(statuses[0].get("restartCount", 0)),
                              env.get(MODEL_URI_ENV, ""))
                )  # fmt: skip
            self._stop.wait(1.0)

    def __enter__(self) -> RuntimePodWatch:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=30)


class Registry:
    """The in-cluster MLflow through ``kubectl port-forward``, opened on first use."""

    def __init__(self, cluster: Cluster, stack: ExitStack) -> None:
        self.cluster = cluster
        self.stack = stack
        self._uri: str | None = None

    @property
    def uri(self) -> str:
        """``http://127.0.0.1:<port>`` forwarded to the artpulse-mlflow Service."""
        if self._uri is None:
            port = self.stack.enter_context(port_forward(self.cluster, "svc/artpulse-mlflow", 5000))
            self._uri = f"http://127.0.0.1:{port}"
        return self._uri

    @property
    def client(self) -> MlflowClient:
        """A client of the in-cluster tracking server and registry."""
        return MlflowClient(tracking_uri=self.uri, registry_uri=self.uri)

    def alias(self, alias: str) -> str:
        """The version ``alias`` names."""
        return str(self.client.get_model_version_by_alias(MODEL_NAME, alias).version)


def events_url(cluster: Cluster) -> str:
    """The event store's URL from the host: the PostgreSQL pod's IP and the Secret's user."""
    secret = next(o for o in cluster.rendered if o["kind"] == "Secret"
                  and o["metadata"]["name"].startswith("artpulse-postgres"))  # fmt: skip
    credentials = cluster.secret(secret["metadata"]["name"])
    pod = cluster.get("pod", "artpulse-postgres-0")
    user, password = credentials["POSTGRES_USER"], credentials["POSTGRES_PASSWORD"]
    return f"postgresql+psycopg://{user}:{password}@{pod['status']['podIP']}:5432/artpulse_events"


def stored_versions(url: str, request_ids: Iterable[str]) -> dict[str, set[str]]:
    """Request id -> the model versions of its stored events (only ids that have events)."""
    ids = list(request_ids)
    store = EventStore(url)
    found: dict[str, set[str]] = {}
    try:
        with store.engine.connect() as connection:
            for start in range(0, len(ids), 1000):
                query = sa.select(
                    prediction_events.c.request_id, prediction_events.c.model_version
                ).where(prediction_events.c.request_id.in_(ids[start : start + 1000]))
                for request_id, version in connection.execute(query):
                    found.setdefault(request_id, set()).add(version)
    finally:
        store.close()
    return found


def wait_events_stored(url: str, expected: dict[str, str], timeout: float = 60) -> None:
    """Wait until every request id in ``expected`` has events, all of its answered version."""
    deadline = time.monotonic() + timeout
    while True:
        stored = stored_versions(url, expected)
        missing = {rid: stored.get(rid) for rid, version in expected.items()
                   if stored.get(rid) != {version}}  # fmt: skip
        if not missing:
            return
        if time.monotonic() > deadline:
            sample = dict(list(missing.items())[:5])
            raise AssertionError(
                f"{len(missing)} of {len(expected)} answered requests have no event of the "
                f"answered version in PostgreSQL after {timeout:g} s, e.g. {sample}"
            )
        time.sleep(1.0)
