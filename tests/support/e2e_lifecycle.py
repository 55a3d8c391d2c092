"""What the e2e's steps share: the cluster, the registry, addresses, sample images, the
predictions made so far, and the actions a user takes (Jobs from CronJobs, promotions)."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime

from artpulse_contract.constants import LABELS
from support.e2e_cluster import Cluster
from support.e2e_serving import Registry
from support.k8s import as_yaml, job_from_cronjob
from support.kustomize import find
from support.polling import wait_for
from support.steps import Steps
from support.traffic import Outcome, SteadyTraffic

RESOURCE = "artpulsemodel/artpulse-classifier"
"""The ArtPulseModel the dev overlay applies (kubectl's kind/name form)."""
OPERATOR = "artpulse-operator"
STARTUP_TIMEOUT = 900
JOB_TIMEOUT = 900
ROLLOUT_TIMEOUT = 300


@dataclass
class Lifecycle:
    """What the steps share: the cluster, the registry, the addresses and sample images."""

    cluster: Cluster
    registry: Registry
    steps: Steps
    images: dict[str, list[bytes]]
    http_url: str = ""
    grpc_target: str = ""
    events_url: str = ""
    answered: dict[str, str] = field(default_factory=dict)
    """Request id -> the model version that answered, for every prediction the e2e made."""

    def traffic(self, images: list[bytes] | None = None, workers: int = 3) -> SteadyTraffic:
        """Steady traffic through the runtime Service."""
        sample = images or [self.images[label][0] for label in LABELS]
        return SteadyTraffic(self.http_url, self.grpc_target, sample, workers=workers)

    def record(self, outcomes: list[Outcome]) -> None:
        """Keep the answered requests, to find their events in PostgreSQL."""
        for outcome in outcomes:
            if outcome.model_version is not None:
                self.answered[outcome.request_id] = outcome.model_version

    def run_job(self, cronjob: str, name: str) -> tuple[str, dict[str, object]]:
        """Create a Job from a CronJob's template exactly; wait; return its end and status."""
        job = job_from_cronjob(find(self.cluster.rendered, "CronJob", cronjob), name)
        self.cluster.kubectl("create", "-f", "-", stdin=as_yaml([job]))
        end = self.cluster.wait_job(name, JOB_TIMEOUT)
        return end, self.cluster.get("job", name)["status"]

    def promote_resource(self, version: int | None) -> None:
        """Set (or, with None, unset) ``spec.version`` of the ArtPulseModel."""
        patch = json.dumps({"spec": {"version": version}})
        self.cluster.kubectl("patch", RESOURCE, "--type=merge", "-p", patch)

    def wait_phase(self, phase: str, version: str) -> dict[str, object]:
        """Wait until the ArtPulseModel reports ``phase`` with ``version`` serving."""

        def reached() -> dict[str, object] | None:
            status = self.resource_status()
            wanted = status.get("phase") == phase and status.get("servingVersion") == version
            return status if wanted else None

        return wait_for(f"phase {phase} serving {version}", reached, ROLLOUT_TIMEOUT, 1.0)

    def resource_status(self) -> dict[str, object]:
        """The ArtPulseModel's status."""
        kind, name = RESOURCE.split("/")
        return dict(self.cluster.get(kind, name).get("status", {}))


def run_seconds(terminated: dict[str, str]) -> float:
    """How long a terminated container ran."""
    started, finished = (datetime.fromisoformat(terminated[k]) for k in ("startedAt", "finishedAt"))
    return (finished - started).total_seconds()


CLIENT_SCRIPT = """set -e
artpulse generate-images --output /tmp/images --per-label 1 --size 96 --seed 5 --workers 1
image=$(ls /tmp/images/vibrant/* | head -n 1)
artpulse predict --url http://artpulse-runtime:8080 --image "$image"
artpulse predict --grpc --grpc-target artpulse-runtime.artpulse.svc.cluster.local:8081 \\
  --image "$image"
artpulse predict --url http://artpulse-runtime:8080 --features 0.3,0.45,0.6,0.25,0.1
"""


def in_cluster_client(life: Lifecycle) -> str:
    """Predict from a pod (the jobs image, the drift CronJob's pod spec with another command)
    through the Service's DNS names; return its output."""
    job = job_from_cronjob(find(life.cluster.rendered, "CronJob", "artpulse-drift"), "e2e-client")
    container = job["spec"]["template"]["spec"]["containers"][0]
    container["command"] = ["sh", "-c", CLIENT_SCRIPT]
    life.cluster.kubectl("create", "-f", "-", stdin=as_yaml([job]))
    end = life.cluster.wait_job("e2e-client", JOB_TIMEOUT)
    output = life.cluster.kubectl("logs", "job/e2e-client")
    assert end == "Complete", output
    return output
