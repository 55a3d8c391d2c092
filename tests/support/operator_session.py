"""A test session on the operator's cluster: API clients, the registry and one namespace."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from kubernetes import client as k8s
from mlflow.tracking import MlflowClient

from artpulse_contract.constants import MODEL_NAME
from artpulse_operator import constants as c
from support.operator_cluster import (
    artpulse_model,
    get_status,
    pinned,
    runtime_deployment,
)
from support.polling import wait_for


@dataclass
class Cluster:
    """API clients, the registry, and the namespace of the current test."""

    core: k8s.CoreV1Api
    apps: k8s.AppsV1Api
    custom: k8s.CustomObjectsApi
    registry_uri: str
    registry: MlflowClient
    webhook_port: int
    namespace: str = ""

    def create_model(self, name: str = "model", **spec: Any) -> None:
        """Create an ArtPulseModel on the module's registry (or ``trackingUri``)."""
        body = artpulse_model(name, spec.pop("trackingUri", self.registry_uri), **spec)
        self.custom.create_namespaced_custom_object(
            c.GROUP, c.VERSION, self.namespace, c.PLURAL, body
        )

    def patch_spec(self, name: str = "model", **spec: Any) -> int:
        """Merge ``spec`` into the resource's spec and return its new generation."""
        changed = self.custom.patch_namespaced_custom_object(
            c.GROUP, c.VERSION, self.namespace, c.PLURAL, name, {"spec": spec}
        )
        return int(changed["metadata"]["generation"])

    def create_deployment(self, **kwargs: Any) -> None:
        """Create the runtime Deployment (see ``runtime_deployment``)."""
        self.apps.create_namespaced_deployment(self.namespace, runtime_deployment(**kwargs))

    def status(self, name: str = "model") -> dict[str, Any]:
        """The resource's status."""
        return get_status(self.custom, self.namespace, name)

    def wait_status(self, what: str, check: Any, timeout: float = 30.0) -> dict[str, Any]:
        """Poll the status until ``check(status)`` holds; return that status."""

        def probe() -> dict[str, Any] | None:
            status = self.status()
            return status if check(status) else None

        return wait_for(what, probe, timeout)

    def pinned(self) -> tuple[Any, Any]:
        """(model URI, version annotation) of the Deployment's pod template."""
        return pinned(self.apps, self.namespace)

    def set_alias(self, version: str) -> None:
        """Point ``champion`` at ``version`` directly in the SQLite registry."""
        self.registry.set_registered_model_alias(MODEL_NAME, "champion", version)

    def events(self) -> list[str]:
        """Reasons of the Events posted on ArtPulseModels in the namespace."""
        items = self.core.list_namespaced_event(self.namespace).items
        return [e.reason for e in items if e.involved_object.kind == c.KIND]
