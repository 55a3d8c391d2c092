"""Helpers of the operator's canary tests: the operator run in-process (``KopfRunner``) on a
test's namespace, the runtime Deployment brought to a canary, and what to look at (the canary
Deployment, its step, its MLflow run). Their fixtures are ``support.canary_plugin``.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from kopf.testing import KopfRunner

from artpulse_contract.constants import (
    ROLLOUT_EXPERIMENT,
)
from artpulse_contract.registry import tags
from artpulse_operator import constants as c
from support.operator_session import Cluster
from support.polling import wait_for

URI = "models:/artpulse-classifier/{}"
CANARY = "artpulse-runtime-canary"
ROLLOUT = {
    "strategy": "Canary",
    "steps": [25, 50, 100],
    "minPredictions": 60,
    "minRequests": 60,
    "minStepSeconds": 0,
}
"""Two analysed steps (25% and 50% of the traffic), then the promotion."""


@contextmanager
def operator(setup: dict[str, Any], namespace: str) -> Iterator[KopfRunner]:
    """The operator watching ``namespace``, reading the module's event store."""
    with pytest.MonkeyPatch.context() as env:
        env.setenv("ARTPULSE_EVENTS_URL", setup["events_url"])
        env.setenv("ARTPULSE_OPERATOR_MAX_BACKOFF_SECONDS", "2")
        args = ["run", "--namespace", namespace, "--standalone", "-m", "artpulse_operator"]
        with KopfRunner(args, timeout=60) as runner:
            yield runner
    assert runner.exception is None, runner.stdout


def release(kube: Cluster) -> None:
    """Delete the resources while the operator runs, so it removes its finalizer."""
    kube.custom.delete_collection_namespaced_custom_object(
        c.GROUP, c.VERSION, kube.namespace, c.PLURAL
    )
    wait_for(
        "the operator to release its resources",
        lambda: (
            not kube.custom.list_namespaced_custom_object(
                c.GROUP, c.VERSION, kube.namespace, c.PLURAL
            )["items"]
        ),
    )


def serving_on_three_replicas(kube: Cluster, **rollout: Any) -> None:
    """The runtime Deployment settled on version 1, then scaled to 3 replicas by its owner."""
    kube.create_deployment()  # 0 replicas: the first rollout completes without pods
    kube.create_model(rollout={**ROLLOUT, **rollout})
    kube.wait_status("version 1 served", lambda s: s.get("phase") == c.PHASE_SERVING)
    kube.apps.patch_namespaced_deployment(
        "artpulse-runtime", kube.namespace, {"spec": {"replicas": 3}}
    )


def canary_started(kube: Cluster, version: int) -> dict[str, Any]:
    """Serving on version 1 with 3 replicas, then ``spec.version`` set: the canary's status
    once it runs its first step."""
    serving_on_three_replicas(kube)
    kube.patch_spec(version=version)
    return kube.wait_status("the canary at step 1", at_step(1))


def canary_deployment(kube: Cluster) -> Any:
    """The canary Deployment, or None."""
    found = [
        d
        for d in kube.apps.list_namespaced_deployment(kube.namespace).items
        if d.metadata.name == CANARY
    ]
    return found[0] if found else None


def at_step(step: int) -> Any:
    """A status check: a canary in flight at ``step`` (1-based)."""
    return lambda s: (
        (s.get("canary") or {}).get("step") == step and s.get("phase") == c.PHASE_CANARY
    )


def rollout_run(kube: Cluster, version: str) -> Any:
    """The MLflow run of this test's canary of ``version`` (the registry is the module's)."""
    experiment = kube.registry.get_experiment_by_name(ROLLOUT_EXPERIMENT)
    (run,) = kube.registry.search_runs(
        [experiment.experiment_id],
        f"tags.`{tags.CANDIDATE_VERSION}` = '{version}' and "
        f"tags.`{tags.CANARY_RESOURCE}` = '{kube.namespace}/model'",
    )
    return run
