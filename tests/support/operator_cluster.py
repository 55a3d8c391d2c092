"""Helpers for operator tests and the operator benchmark: a registry with versions, a runtime
Deployment in a throwaway namespace, the operator's manifests, and a kubeconfig signed in as
a ServiceAccount."""

from __future__ import annotations

import os
import subprocess
import uuid
from pathlib import Path
from typing import Any

import mlflow
import numpy as np
import yaml
from kubernetes import client as k8s
from kubernetes.client.exceptions import ApiException
from mlflow.tracking import MlflowClient
from sklearn.linear_model import LogisticRegression

from artpulse_contract.classifier import ArtPulseClassifier
from artpulse_contract.constants import LABELS, MODEL_NAME, MODEL_URI_ENV
from artpulse_operator.constants import API_VERSION, GROUP, KIND, PLURAL, VERSION

REPO = Path(__file__).resolve().parents[2]
CRD_PATH = REPO / "manifests" / "crd.yaml"
KUBECTL = REPO / ".venv" / "bin" / "kubectl"
TOKEN_SECONDS = 3600
"""Lifetime asked of a ServiceAccount token (the API server's minimum is 600 s)."""


def register_versions(tmp_dir: Path, count: int, model_name: str = MODEL_NAME) -> str:
    """A SQLite registry in ``tmp_dir`` holding ``count`` versions of one tiny logged model.

    The model is a real ``ArtPulseClassifier`` logged once; the other versions are created
    from the same artifact (the operator only needs versions and aliases). Returns the URI.
    """
    uri = f"sqlite:///{tmp_dir / 'mlflow.db'}"
    mlflow.set_tracking_uri(uri)
    mlflow.set_registry_uri(uri)
    client = MlflowClient(tracking_uri=uri, registry_uri=uri)
    experiment = client.create_experiment(
        "operator-tests", artifact_location=(tmp_dir / "artifacts").as_uri()
    )
    rng = np.random.default_rng(0)
    features = rng.random((20, 5)).astype(np.float32)
    labels = np.arange(20) % len(LABELS)
    estimator = LogisticRegression(max_iter=200).fit(features, labels)
    with mlflow.start_run(experiment_id=experiment) as run:
        info = mlflow.pyfunc.log_model(
            name="model",
            python_model=ArtPulseClassifier(estimator),
            pip_requirements=["scikit-learn", "mlflow"],
        )
    client.create_registered_model(model_name)
    for _ in range(count):
        client.create_model_version(model_name, info.model_uri, run_id=run.info.run_id)
    return uri


def apply_crd() -> None:
    """Apply ``manifests/crd.yaml`` with kubectl and wait until the API serves it."""
    subprocess.run(
        [str(KUBECTL), "apply", "-f", str(CRD_PATH)], check=True, capture_output=True, text=True
    )
    subprocess.run(
        [
            str(KUBECTL),
            "wait",
            "--for=condition=Established",
            f"crd/{PLURAL}.{GROUP}",
            "--timeout=30s",
        ],
        check=True,
        capture_output=True,
        text=True,
    )


def create_namespace(core: k8s.CoreV1Api, prefix: str = "apm-test") -> str:
    """Create a fresh namespace and return its name."""
    name = f"{prefix}-{uuid.uuid4().hex[:8]}"
    core.create_namespace({"metadata": {"name": name}})
    return name


def delete_namespace(core: k8s.CoreV1Api, name: str) -> None:
    """Delete a namespace (without waiting for it to go)."""
    try:
        core.delete_namespace(name)
    except ApiException as error:
        if error.status != 404:
            raise


def runtime_deployment(
    name: str = "artpulse-runtime",
    *,
    container: str = "runtime",
    replicas: int = 0,
    progress_deadline: int = 600,
    model_uri: str = f"models:/{MODEL_NAME}@champion",
) -> dict[str, Any]:
    """A serving Deployment like the kustomize base's (no kubelet here: pods stay Pending)."""
    labels = {"app.kubernetes.io/name": name}
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name, "labels": labels},
        "spec": {
            "replicas": replicas,
            "progressDeadlineSeconds": progress_deadline,
            "selector": {"matchLabels": labels},
            "template": {
                "metadata": {"labels": labels},
                "spec": {
                    "containers": [
                        {
                            "name": container,
                            "image": "artpulse/runtime:dev",
                            "env": [{"name": MODEL_URI_ENV, "value": model_uri}],
                        }
                    ]
                },
            },
        },
    }


def artpulse_model(name: str, tracking_uri: str, **spec: Any) -> dict[str, Any]:
    """An ArtPulseModel resource following ``champion`` on ``tracking_uri``."""
    return {
        "apiVersion": API_VERSION,
        "kind": KIND,
        "metadata": {"name": name},
        "spec": {"trackingUri": tracking_uri, "pollIntervalSeconds": 1, **spec},
    }


def get_status(custom: k8s.CustomObjectsApi, namespace: str, name: str) -> dict[str, Any]:
    """The resource's status (empty until the operator writes it)."""
    body = custom.get_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL, name)
    return dict(body.get("status") or {})


def condition(status: dict[str, Any], kind: str) -> dict[str, Any]:
    """The status condition of type ``kind`` (empty when absent)."""
    return next((c for c in status.get("conditions") or [] if c.get("type") == kind), {})


def replica_sets(apps: k8s.AppsV1Api, namespace: str) -> list[Any]:
    """The ReplicaSets in ``namespace``."""
    return list(apps.list_namespaced_replica_set(namespace).items)


def pinned(apps: k8s.AppsV1Api, namespace: str, name: str = "artpulse-runtime") -> tuple[Any, Any]:
    """(model URI env value, model-version annotation) of the Deployment's pod template."""
    template = apps.read_namespaced_deployment(name, namespace).spec.template
    env = {e.name: e.value for e in template.spec.containers[0].env or []}
    annotations = template.metadata.annotations or {}
    return env.get(MODEL_URI_ENV), annotations.get("artpulse.io/model-version")


def install_manifests(namespace: str, work_dir: Path) -> None:
    """Apply ``manifests/`` (CRD, ServiceAccount, Role, RoleBinding) into ``namespace``.

    Through a kustomization with ``namespace:``, as the kustomize base includes it.
    """
    work_dir.mkdir(parents=True, exist_ok=True)
    relative = os.path.relpath(REPO / "manifests", work_dir)
    (work_dir / "kustomization.yaml").write_text(
        f"namespace: {namespace}\nresources:\n  - {relative}\n"
    )
    subprocess.run(
        [str(KUBECTL), "apply", "-k", str(work_dir)], check=True, capture_output=True, text=True
    )


def service_account_kubeconfig(
    core: k8s.CoreV1Api, admin_kubeconfig: str, namespace: str, account: str, path: Path
) -> Path:
    """Write a kubeconfig that authenticates as ``namespace/account`` with a bound token.

    The token comes from the TokenRequest API (``serviceaccounts/token``), as a kubelet gets
    one for a pod: Kubernetes >= 1.24 no longer creates token Secrets for ServiceAccounts.
    """
    request = k8s.AuthenticationV1TokenRequest(
        spec=k8s.V1TokenRequestSpec(audiences=[], expiration_seconds=TOKEN_SECONDS)
    )
    token = core.create_namespaced_service_account_token(account, namespace, request).status.token
    admin = yaml.safe_load(Path(admin_kubeconfig).read_text())
    cluster = admin["clusters"][0]["cluster"]
    config = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": "local", "cluster": cluster}],
        "users": [{"name": account, "user": {"token": token}}],
        "contexts": [
            {
                "name": account,
                "context": {"cluster": "local", "user": account, "namespace": namespace},
            }
        ],
        "current-context": account,
    }
    path.write_text(yaml.safe_dump(config))
    return path
