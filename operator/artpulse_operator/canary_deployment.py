"""The canary Deployment: the serving Deployment's pod template pinned to the candidate, next
to it behind the same Service, and the replica count that gives it a traffic share.

The canary is named ``<deployment>-canary``; it carries the serving Deployment's labels (which
the Service selects) plus ``artpulse.io/track: canary`` in its selector and pods, so its
ReplicaSets and pods are its own, and an owner reference to the ArtPulseModel, so deleting
the resource deletes it. A Service spreads connections evenly over ready pods, so a share is
realised by replica ratio: with ``N`` stable replicas, ``k`` canary replicas get
``k / (N + k)`` of the traffic. The stable count belongs to its owner (or autoscaler) and is
never changed here; ``k`` follows it.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from kubernetes import client as k8s
from kubernetes.client.exceptions import ApiException

from artpulse_contract.registry.uris import pinned_uri
from artpulse_operator import constants as c
from artpulse_operator.deployment import DeploymentView, pinned_template, view_deployment

COPIED_SPEC_FIELDS = (
    "minReadySeconds",
    "progressDeadlineSeconds",
    "revisionHistoryLimit",
    "strategy",
)
"""Deployment spec fields the canary takes over from the serving Deployment."""


def canary_name(deployment: str) -> str:
    """The canary Deployment's name: ``<deployment>-canary``."""
    return f"{deployment}{c.CANARY_SUFFIX}"


def canary_replicas(stable_replicas: int, share: int) -> int:
    """Canary replicas for ``share`` percent of the traffic next to ``stable_replicas``.

    ``round(N * s / (100 - s))``, at least 1 and at most N (the canary never outgrows the
    stable side, so it costs at most as many pods again); the realised share is
    ``k / (N + k)``: with N replicas the smallest share is ``1 / (N + 1)`` and the largest
    one half.
    """
    if stable_replicas < 1:
        return 1
    wanted = round(stable_replicas * share / (100 - share)) if share < 100 else stable_replicas
    return max(1, min(stable_replicas, wanted))


def realised_share(stable_replicas: int, canary: int) -> int:
    """The share of the traffic (percent, rounded) ``canary`` replicas get next to the stable."""
    total = max(stable_replicas, 0) + canary
    return round(100 * canary / total) if total else 0


def canary_body(
    serving: DeploymentView,
    container: str,
    model_name: str,
    version: str,
    replicas: int,
    owner: Mapping[str, Any],
) -> dict[str, Any]:
    """The canary Deployment of ``serving``, pinned to ``version``, owned by ``owner``."""
    source = serving.body
    spec = source.get("spec") or {}
    meta = owner.get("metadata") or {}
    selector = copy.deepcopy(dict(spec.get("selector") or {}))
    selector["matchLabels"] = {**(selector.get("matchLabels") or {}), c.TRACK_LABEL: c.TRACK_CANARY}
    template = pinned_template(
        spec.get("template") or {}, container, pinned_uri(model_name, version), version
    )
    template_meta = template.setdefault("metadata", {})
    template_meta["labels"] = {**(template_meta.get("labels") or {}), c.TRACK_LABEL: c.TRACK_CANARY}
    labels = dict((source.get("metadata") or {}).get("labels") or {})
    labels.update({c.TRACK_LABEL: c.TRACK_CANARY, c.CANARY_OF_LABEL: str(meta.get("name"))})
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {
            "name": canary_name(serving.name),
            "labels": labels,
            "ownerReferences": [
                {
                    "apiVersion": c.API_VERSION,
                    "kind": c.KIND,
                    "name": meta.get("name"),
                    "uid": meta.get("uid"),
                    "controller": True,
                }
            ],
        },
        "spec": {
            **{key: copy.deepcopy(spec[key]) for key in COPIED_SPEC_FIELDS if key in spec},
            "replicas": replicas,
            "selector": selector,
            "template": template,
        },
    }


@dataclass(frozen=True, slots=True)
class CanaryView:
    """A canary Deployment as found: what it runs, how many replicas, whose it is."""

    view: DeploymentView
    owner_uids: tuple[str, ...]

    def owned_by(self, uid: str) -> bool:
        """True when the ArtPulseModel with ``uid`` made this canary."""
        return uid in self.owner_uids


def view_canary(body: Mapping[str, Any], container: str) -> CanaryView:
    """Read a canary Deployment (JSON) into a ``CanaryView``."""
    owners = (body.get("metadata") or {}).get("ownerReferences") or []
    uids = tuple(str(o.get("uid")) for o in owners if o.get("kind") == c.KIND)
    return CanaryView(view_deployment(body, container), uids)


def read_canary(api: k8s.AppsV1Api, namespace: str, name: str, container: str) -> CanaryView | None:
    """The canary Deployment ``name``, or None when there is none."""
    try:
        found = api.read_namespaced_deployment(name, namespace)
    except ApiException as error:
        if error.status == 404:
            return None
        raise
    return view_canary(api.api_client.sanitize_for_serialization(found), container)


def create_canary(api: k8s.AppsV1Api, namespace: str, body: Mapping[str, Any]) -> None:
    """Create the canary Deployment ``body``; one that exists already is left for the next
    poll to check (a poll that created it may not have got to write its status)."""
    deployment: Any = dict(body)  # the client accepts the API's JSON as well as its models
    try:
        api.create_namespaced_deployment(namespace, deployment)
    except ApiException as error:
        if error.status != 409:
            raise


def scale_canary(api: k8s.AppsV1Api, namespace: str, name: str, replicas: int) -> None:
    """Set the canary Deployment's replica count."""
    api.patch_namespaced_deployment(name, namespace, {"spec": {"replicas": replicas}})


def delete_canary(api: k8s.AppsV1Api, namespace: str, name: str) -> None:
    """Delete the canary Deployment with its ReplicaSets and pods (gone already is fine)."""
    try:
        api.delete_namespaced_deployment(name, namespace, propagation_policy="Background")
    except ApiException as error:
        if error.status != 404:
            raise
