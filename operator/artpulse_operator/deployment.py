"""What a serving Deployment runs, and the patches that pin, or restore, its model version.

The pure functions work on the Deployment as a plain dict (the API's JSON); ``read_deployment``
and ``patch_deployment`` are the only calls to the API server.
"""

from __future__ import annotations

import copy
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from kubernetes import client as k8s
from kubernetes.client.exceptions import ApiException

from artpulse_contract.constants import MODEL_URI_ENV
from artpulse_contract.registry.uris import pinned_version
from artpulse_operator.constants import (
    MODEL_VERSION_ANNOTATION,
    PROGRESS_DEADLINE_EXCEEDED,
    STRATEGY_CANARY,
    STRATEGY_RECREATE,
    STRATEGY_ROLLING,
)

STRATEGIC_MERGE = "application/strategic-merge-patch+json"


class DeploymentMissing(LookupError):
    """The target Deployment does not exist in the resource's namespace."""


class ContainerMissing(LookupError):
    """The target Deployment has no container of the configured name."""


@dataclass(frozen=True, slots=True)
class DeploymentView:
    """The parts of a Deployment the operator decides on."""

    name: str
    env_entry: dict[str, Any] | None
    """The container's ``ARTPULSE_MODEL_URI`` env entry as in the API, None when absent."""
    annotated_version: str | None
    """The pod template's ``artpulse.io/model-version`` annotation."""
    complete: bool
    """Every replica runs the latest template and is available."""
    deadline_exceeded: bool
    """The latest rollout stalled: ``Progressing=False`` with ``ProgressDeadlineExceeded``."""
    progress_message: str
    replicas: int = 1
    """``spec.replicas``: what its owner (or an autoscaler) asks for."""
    strategy_type: str = "RollingUpdate"
    """``spec.strategy.type``: ``RollingUpdate`` or ``Recreate``."""
    body: Mapping[str, Any] = field(default_factory=dict, compare=False, repr=False)
    """The Deployment as the API returned it (a canary copies its template)."""

    @property
    def model_uri(self) -> str | None:
        """The literal model URI the container is given, if any."""
        return None if self.env_entry is None else self.env_entry.get("value")

    def served_version(self, model_name: str) -> str | None:
        """The version the pods are pinned to: the annotation, else a pinned URI's number."""
        return self.annotated_version or pinned_version(self.model_uri, model_name)

    def is_pinned(self, model_uri: str, version: str) -> bool:
        """True when both the env and the annotation already name ``version``."""
        return self.model_uri == model_uri and self.annotated_version == version


def _progressing(status: Mapping[str, Any]) -> Mapping[str, Any]:
    for condition in status.get("conditions") or []:
        if condition.get("type") == "Progressing":
            return dict(condition)
    return {}


def _rollout_state(body: Mapping[str, Any]) -> tuple[bool, bool, str]:
    """(complete, deadline exceeded, progress message) of the Deployment's latest template."""
    spec = body.get("spec") or {}
    status = body.get("status") or {}
    generation = int((body.get("metadata") or {}).get("generation") or 0)
    updated = int(status.get("observedGeneration") or 0) >= generation
    wanted = int(spec.get("replicas", 1))
    ready = int(status.get("updatedReplicas") or 0)
    complete = (
        updated
        and ready >= wanted
        and int(status.get("replicas") or 0) <= ready
        and int(status.get("availableReplicas") or 0) >= ready
    )
    progressing = _progressing(status)
    exceeded = (
        updated
        and progressing.get("status") == "False"
        and progressing.get("reason") == PROGRESS_DEADLINE_EXCEEDED
    )
    return complete, exceeded, str(progressing.get("message") or "")


def view_deployment(body: Mapping[str, Any], container: str) -> DeploymentView:
    """Read what ``body`` (a Deployment as JSON) serves; raise ``ContainerMissing`` if needed."""
    meta = body.get("metadata") or {}
    template = (body.get("spec") or {}).get("template") or {}
    containers = (template.get("spec") or {}).get("containers") or []
    match = [c for c in containers if c.get("name") == container]
    if not match:
        names = ", ".join(repr(c.get("name")) for c in containers) or "none"
        raise ContainerMissing(
            f"Deployment {meta.get('name')!r} has no container {container!r} (containers: {names})"
        )
    env = [e for e in match[0].get("env") or [] if e.get("name") == MODEL_URI_ENV]
    annotations = (template.get("metadata") or {}).get("annotations") or {}
    complete, exceeded, progress_message = _rollout_state(body)
    spec = body.get("spec") or {}
    return DeploymentView(
        name=str(meta.get("name")),
        env_entry=dict(env[0]) if env else None,
        annotated_version=annotations.get(MODEL_VERSION_ANNOTATION),
        complete=complete,
        deadline_exceeded=exceeded,
        progress_message=progress_message,
        replicas=int(spec.get("replicas", 1)),
        strategy_type=str((spec.get("strategy") or {}).get("type") or "RollingUpdate"),
        body=body,
    )


def _template_patch(
    container: str, env_entry: Mapping[str, Any], version: str | None
) -> dict[str, Any]:
    return {
        "spec": {
            "template": {
                "metadata": {"annotations": {MODEL_VERSION_ANNOTATION: version}},
                "spec": {"containers": [{"name": container, "env": [dict(env_entry)]}]},
            }
        }
    }


def pin_entry(model_uri: str) -> dict[str, Any]:
    """The container's env entry pinning ``model_uri`` (and clearing a ``valueFrom``)."""
    return {"name": MODEL_URI_ENV, "value": model_uri, "valueFrom": None}


def pin_patch(container: str, model_uri: str, version: str) -> dict[str, Any]:
    """Strategic-merge patch setting the container's model URI and the version annotation."""
    return _template_patch(container, pin_entry(model_uri), version)


def pinned_template(
    template: Mapping[str, Any], container: str, model_uri: str, version: str
) -> dict[str, Any]:
    """A copy of a pod ``template`` with ``pin_patch``'s env entry and annotation applied."""
    pinned = copy.deepcopy(dict(template))
    metadata = pinned.setdefault("metadata", {})
    annotations = dict(metadata.get("annotations") or {})
    metadata["annotations"] = {**annotations, MODEL_VERSION_ANNOTATION: version}
    entry = {key: value for key, value in pin_entry(model_uri).items() if value is not None}
    for spec in (pinned.get("spec") or {}).get("containers") or []:
        if spec.get("name") == container:
            others = [e for e in spec.get("env") or [] if e.get("name") != MODEL_URI_ENV]
            spec["env"] = [*others, entry]
    return pinned


STRATEGY_TYPES = {
    STRATEGY_RECREATE: "Recreate",
    STRATEGY_ROLLING: "RollingUpdate",
    STRATEGY_CANARY: "RollingUpdate",
}
"""The Deployment strategy type each rollout strategy rolls the serving Deployment with."""


def strategy_patch(rollout_strategy: str, view: DeploymentView) -> dict[str, Any]:
    """The part of a pin that sets the Deployment's strategy type, when it differs.

    ``Recreate`` stops every old pod before new ones start; ``Rolling`` (and a canary's final
    step) roll as the Deployment's ``rollingUpdate`` says. Empty when nothing changes, so a
    Deployment already of the right type keeps its own settings.
    """
    wanted = STRATEGY_TYPES[rollout_strategy]
    if view.strategy_type == wanted:
        return {}
    # A Recreate Deployment must not keep rollingUpdate parameters (the API refuses them).
    strategy = {"type": wanted, "rollingUpdate": None} if wanted == "Recreate" else {"type": wanted}
    return {"spec": {"strategy": strategy}}


def restore_patch(
    container: str, env_entry: Mapping[str, Any] | None, version: str | None
) -> dict[str, Any]:
    """Strategic-merge patch putting back a previous env entry and annotation exactly.

    ``None`` for either removes it, so the template equals the earlier one and the
    Deployment controller scales the earlier ReplicaSet back up.
    """
    if env_entry is None:
        entry: dict[str, Any] = {"name": MODEL_URI_ENV, "$patch": "delete"}
    else:
        entry = {"value": None, "valueFrom": None, **dict(env_entry), "name": MODEL_URI_ENV}
    return _template_patch(container, entry, version)


@contextmanager
def _missing_as_typed_error(namespace: str, name: str) -> Iterator[None]:
    """Turn the API's 404 for the Deployment into ``DeploymentMissing``; re-raise the rest."""
    try:
        yield
    except ApiException as error:
        if error.status == 404:
            raise DeploymentMissing(
                f"Deployment {name!r} not found in namespace {namespace!r}"
            ) from error
        raise


def read_deployment(
    api: k8s.AppsV1Api, namespace: str, name: str, container: str
) -> DeploymentView:
    """Fetch and view the Deployment; raise ``DeploymentMissing`` or ``ContainerMissing``."""
    with _missing_as_typed_error(namespace, name):
        found = api.read_namespaced_deployment(name, namespace)
    return view_deployment(api.api_client.sanitize_for_serialization(found), container)


def patch_deployment(
    api: k8s.AppsV1Api, namespace: str, name: str, patch: Mapping[str, Any], container: str
) -> DeploymentView:
    """Apply a strategic-merge ``patch`` to the Deployment and view the result."""
    with _missing_as_typed_error(namespace, name):
        changed = api.patch_namespaced_deployment(
            name, namespace, dict(patch), _content_type=STRATEGIC_MERGE
        )
    return view_deployment(api.api_client.sanitize_for_serialization(changed), container)
