"""The whole lifecycle on a real node, from ``kubectl apply`` to a rolled-back bad version.

The tests run in order on one cluster (the session fixture ``cluster`` built the images and
applied the dev overlay); each later step builds on what the earlier ones left:

1. PostgreSQL, MLflow, the operator and the runtime start; the bootstrap Job generates images
   and trains version 1; the runtime becomes ready only once version 1 exists.
2. V2 predictions through the runtime Service (REST and gRPC, images and feature rows), from
   the host and from a pod; the events land in the cluster's PostgreSQL.
3. The drift, retrain and train CronJobs' job templates run as Jobs: drift finds the drift of
   two-style traffic and fails its Job without a retry (exit 3), retrain registers version 2,
   train version 3.
4. Promotion: editing the ArtPulseModel (version 2), then ``artpulse promote`` against the
   in-cluster MLflow (version 3); every pod answers with the new version.
5. A version that cannot load (4) is rolled back by the operator after the progress deadline;
   the pods keep serving 3 and no request fails meanwhile.
6. The operator restarted and a runtime pod deleted under steady traffic: no request fails
   beyond the client retry policy (``support.traffic``), every answered prediction is stored.
7. A canary of version 2 on a real pod beside the stable ones, under traffic through the
   Service: analysed on the pods' events and serving outcomes, promoted, the canary removed
   (``support.e2e_canary``).
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path

import pytest

from artpulse_contract.constants import (
    ALIAS_CHALLENGER,
    ALIAS_CHAMPION,
    ALIAS_PREVIOUS_CHAMPION,
    DRIFT_REPORT_HTML,
    DRIFT_REPORT_JSON,
    LABELS,
    MODEL_NAME,
)
from artpulse_jobs.data.generate import generate_images
from artpulse_operator.constants import MODEL_VERSION_ANNOTATION
from support.e2e_canary import canary_on_real_pods
from support.e2e_cluster import Cluster, condition, is_ready
from support.e2e_lifecycle import (
    OPERATOR,
    ROLLOUT_TIMEOUT,
    STARTUP_TIMEOUT,
    Lifecycle,
    in_cluster_client,
    run_seconds,
)
from support.e2e_platform import PROGRESS_DEADLINE_SECONDS, RUNTIME
from support.e2e_serving import (
    PINNED_URI,
    Registry,
    RuntimePodWatch,
    events_url,
    pinned_uris,
    wait_all_serving,
    wait_events_stored,
)
from support.polling import wait_for
from support.steps import Steps
from support.unloadable_model import register_unloadable_version

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def life(
    cluster: Cluster, steps: Steps, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Lifecycle]:
    """The shared state of the steps; closes the port-forwards at the end."""
    folder = tmp_path_factory.mktemp("images")
    generate_images(folder, 2, size=96, seed=11, workers=1)
    images = {
        label: [p.read_bytes() for p in sorted((folder / label).iterdir())] for label in LABELS
    }
    with ExitStack() as stack:
        yield Lifecycle(cluster, Registry(cluster, stack), steps, images)


def test_1_platform_starts_and_the_runtime_waits_for_version_1(life: Lifecycle) -> None:
    cluster, steps = life.cluster, life.steps
    with (
        steps.step("step 1: platform up, bootstrap trains version 1"),
        RuntimePodWatch(cluster) as watch,
    ):
        start = cluster.applied_at
        for what, kind, name, wanted in (
            ("PostgreSQL", "statefulset", "artpulse-postgres", "readyReplicas"),
            ("MLflow", "deployment", "artpulse-mlflow", "availableReplicas"),
            ("operator", "deployment", OPERATOR, "availableReplicas"),
        ):

            def ready(kind: str = kind, name: str = name, wanted: str = wanted) -> object:
                cluster.assert_no_crash_loop()
                return cluster.get(kind, name).get("status", {}).get(wanted)

            wait_for(f"{what} ready", ready, STARTUP_TIMEOUT, 1.0)
            steps.note(f"{what} ready {time.time() - start:.0f} s after the apply")
        assert cluster.wait_job("artpulse-bootstrap", STARTUP_TIMEOUT) == "Complete"
        pods = cluster.items("pod", "job-name=artpulse-bootstrap")
        pod = next(p for p in pods if p["status"]["phase"] == "Succeeded")
        for status in pod["status"]["initContainerStatuses"] + pod["status"]["containerStatuses"]:
            ran = run_seconds(status["state"]["terminated"])
            steps.note(f"bootstrap {status['name']}: {ran:.0f} s ({len(pods)} pod(s))")
        version_1 = life.registry.client.get_model_version(MODEL_NAME, "1")
        registered = int(version_1.creation_timestamp) / 1000
        steps.note(f"version 1 registered {registered - start:.0f} s after the apply")
        wait_for("the operator to pin version 1", lambda: life.resource_status().get(
            "servingVersion") == "1", STARTUP_TIMEOUT, 1.0)  # fmt: skip
        steps.note(f"operator pinned version 1 {time.time() - start:.0f} s after the apply")
        wait_all_serving(cluster, "1", STARTUP_TIMEOUT)
        steps.note(f"all runtime pods serve version 1 {time.time() - start:.0f} s after the apply")
    template = cluster.get("deployment", RUNTIME)["spec"]["template"]
    assert template["metadata"]["annotations"][MODEL_VERSION_ANNOTATION] == "1"
    life.wait_phase("Serving", "1")
    waited = [s for s in watch.samples if s.at < registered and s.phase == "Running"]
    assert waited and not any(s.ready for s in waited), "a runtime pod was ready before v1"
    assert all(PINNED_URI.match(s.model_uri) for s in watch.samples)
    assert not any(s.restarts for s in watch.samples), "a runtime pod restarted while waiting"
    life.http_url = "http://" + cluster.service_address(RUNTIME, "http")
    life.grpc_target = cluster.service_address(RUNTIME, "grpc")
    life.events_url = events_url(cluster)


def test_2_predictions_over_rest_and_grpc_land_in_postgresql(life: Lifecycle) -> None:
    with life.steps.step("step 2: V2 predictions through the Service, events in PostgreSQL"):
        traffic = life.traffic()
        outcomes = [traffic.one(kind) for kind in
                    ("rest-image", "rest-features", "grpc-image", "grpc-features")]  # fmt: skip
        assert [(o.model_version, o.attempts) for o in outcomes] == [("1", 1)] * 4, outcomes
        life.record(outcomes)
        client = in_cluster_client(life)
        assert client.count("model artpulse-classifier version 1") == 3, client
        wait_events_stored(life.events_url, life.answered)
        life.steps.note(f"{len(outcomes)} predictions from the host, 3 from a pod; events stored")


def test_3_cronjob_templates_run_as_jobs(life: Lifecycle) -> None:
    registry, steps = life.registry, life.steps
    with steps.step("step 3a: 300 predictions of two styles only"):
        shifted = life.images["vibrant"] + life.images["neo-pop"]
        traffic = life.traffic(shifted)
        outcomes = [traffic.one("rest-image") for _ in range(300)]
        assert all(o.model_version == "1" for o in outcomes)
        life.record(outcomes)
        wait_events_stored(life.events_url, life.answered)
    with steps.step("step 3b: drift CronJob template as a Job (drift found: exit 3)"):
        end, status = life.run_job("artpulse-drift", "drift-e2e")
        pods = life.cluster.items("pod", "job-name=drift-e2e")
        exits = [
            p["status"]["containerStatuses"][0]["state"]["terminated"]["exitCode"] for p in pods
        ]
        assert (end, exits, status.get("failed"), status.get("succeeded")) == (
            "Failed",
            [3],
            1,
            None,
        ), status
        reason = condition(life.cluster.get("job", "drift-e2e"), "Failed")
        steps.note(
            f"drift Job failed after 1 pod (exit 3), no retry: {reason and reason['reason']}"
        )
        experiment = registry.client.get_experiment_by_name("drift")
        assert experiment is not None
        (run,) = registry.client.search_runs([experiment.experiment_id], max_results=1,
                                             order_by=["attributes.start_time DESC"])  # fmt: skip
        assert run.data.tags["artpulse.drift.verdict"] == "drift"
        artifacts = {a.path for a in registry.client.list_artifacts(run.info.run_id)}
        assert {DRIFT_REPORT_JSON, DRIFT_REPORT_HTML} <= artifacts, artifacts
    with steps.step("step 3c: retrain CronJob template as a Job (registers version 2)"):
        end, _ = life.run_job("artpulse-retrain", "retrain-e2e")
        assert end == "Complete"
        assert registry.alias(ALIAS_CHALLENGER) == "2"
        version = registry.client.get_model_version(MODEL_NAME, "2")
        assert version.tags["artpulse.retrain.reason"] == "drift"
    with steps.step("step 3d: train CronJob template as a Job (registers version 3)"):
        end, _ = life.run_job("artpulse-train", "train-e2e")
        assert end == "Complete"
        assert registry.alias(ALIAS_CHALLENGER) == "3"
        assert registry.alias(ALIAS_CHAMPION) == "1"


def test_4_promotion_reaches_every_pod(life: Lifecycle) -> None:
    registry, steps = life.registry, life.steps
    with steps.step("step 4a: promote version 2 by editing the ArtPulseModel"):
        life.promote_resource(2)
        seconds = wait_all_serving(life.cluster, "2", ROLLOUT_TIMEOUT)
        steps.note(f"edit of spec.version -> every pod serves version 2: {seconds:.1f} s")
        assert registry.alias(ALIAS_CHAMPION) == "2"
        tags = registry.client.get_model_version(MODEL_NAME, "2").tags
        assert tags["artpulse.promoted_by"].startswith("artpulse-operator:"), tags
    with steps.step("step 4b: promote version 3 with `artpulse promote`"):
        life.promote_resource(None)
        env = {**os.environ, "MLFLOW_TRACKING_URI": registry.uri}
        promoted = subprocess.run(
            [str(Path(sys.executable).parent / "artpulse"), "promote"],
            env=env, capture_output=True, text=True, check=False, timeout=600,
        )  # fmt: skip
        assert promoted.returncode == 0, promoted.stdout + promoted.stderr
        assert (registry.alias(ALIAS_CHAMPION), registry.alias(ALIAS_PREVIOUS_CHAMPION)) == (
            "3",
            "2",
        )
        seconds = wait_all_serving(life.cluster, "3", ROLLOUT_TIMEOUT)
        steps.note(f"alias moved -> every pod serves version 3: {seconds:.1f} s (poll 30 s)")
    outcome = life.traffic().one("rest-features")
    assert outcome.model_version == "3"
    life.record([outcome])
    wait_events_stored(life.events_url, life.answered)
    life.wait_phase("Serving", "3")


def test_5_a_version_that_cannot_load_is_rolled_back(life: Lifecycle) -> None:
    steps = life.steps
    with steps.step("step 5: version 4 cannot load; the operator rolls back"):
        broken = register_unloadable_version(life.registry.uri)
        assert broken == "4"
        traffic = life.traffic().start()
        start = time.monotonic()
        life.promote_resource(4)
        status = life.wait_phase("RolledBack", "3")
        steps.note(f"edit -> RolledBack: {time.monotonic() - start:.0f} s "
                   f"(progress deadline {PROGRESS_DEADLINE_SECONDS} s)")  # fmt: skip
        wait_all_serving(life.cluster, "3", ROLLOUT_TIMEOUT)
        steps.note(f"edit -> every pod serves version 3 again: {time.monotonic() - start:.0f} s")
        outcomes = traffic.stop()
    life.record(outcomes)
    assert status["failedVersion"] == "4", status
    assert "ProgressDeadlineExceeded" in str(status["message"]), status
    failed = [o for o in outcomes if not o.ok]
    assert not failed, failed[:5]
    assert {o.model_version for o in outcomes} == {"3"}
    steps.note(f"{len(outcomes)} requests during the failed rollout, none failed")
    selector = "involvedObject.kind=ArtPulseModel,reason=RolledBack"
    events = life.cluster.kubectl("get", "events", "--field-selector", selector)
    assert "version 4" in events, events


def test_6_operator_restart_and_pod_deletion_under_traffic(life: Lifecycle) -> None:
    cluster, steps = life.cluster, life.steps
    generation = cluster.get("deployment", RUNTIME)["metadata"]["generation"]
    with steps.step("step 6: operator restart and a runtime pod deletion under traffic"):
        traffic = life.traffic().start()
        wait_for("traffic", lambda: len(traffic.outcomes) >= 30, 60, 0.2)
        (old_operator,) = cluster.pods(OPERATOR)
        start = time.monotonic()
        cluster.kubectl("delete", "pod", old_operator["metadata"]["name"], "--wait=false")
        new_operator = wait_for("a new operator pod ready", lambda: [
            p for p in cluster.pods(OPERATOR)
            if is_ready(p) and p["metadata"]["name"] != old_operator["metadata"]["name"]
        ], ROLLOUT_TIMEOUT, 1.0)[0]["metadata"]["name"]  # fmt: skip
        # The resume handler wakes the resource's loop, which reconciles at once.
        resumed = "Resuming is processed"
        wait_for("the new operator to resume the resource",
                 lambda: resumed in cluster.logs(new_operator), 120, 1.0)  # fmt: skip
        steps.note(f"operator pod replaced, ready and resumed in {time.monotonic() - start:.0f} s")
        victim = next(p for p in cluster.pods(RUNTIME) if is_ready(p))["metadata"]["name"]
        start = time.monotonic()
        cluster.kubectl("delete", "pod", victim, "--wait=false")
        seconds = wait_all_serving(cluster, "3", ROLLOUT_TIMEOUT)
        steps.note(f"runtime pod {victim} deleted -> 2 pods serving again in {seconds:.0f} s")

        # Traffic goes on until the deleted pod has drained, stopped and flushed its events;
        # its last log and exit tell how it stopped.
        last: dict[str, object] = {}

        def gone() -> bool:
            pods = {p["metadata"]["name"]: p for p in cluster.pods(RUNTIME)}
            if victim not in pods:
                return True
            statuses = pods[victim].get("status", {}).get("containerStatuses") or [{}]
            last["terminated"] = statuses[0].get("state", {}).get("terminated")
            log = cluster.logs(victim)
            if not log.startswith(("(kubectl", "unable to retrieve container logs")):
                last["log"] = log
            return False

        wait_for(f"pod {victim} gone", gone, ROLLOUT_TIMEOUT, 1.0)
        ended = last.get("terminated") or {}
        steps.note(f"runtime pod {victim} gone {time.monotonic() - start:.0f} s after the delete "
                   f"(exit {ended.get('exitCode')}, {ended.get('reason')})")  # fmt: skip
        (cluster.artifacts / f"{victim}.log").write_text(str(last.get("log", "")))
        settled = len(traffic.outcomes)
        wait_for("more traffic", lambda: len(traffic.outcomes) >= settled + 30, 60, 0.2)
        outcomes = traffic.stop()
        duration = time.monotonic() - start
    life.record(outcomes)
    failed = [o for o in outcomes if not o.ok]
    retried = [o for o in outcomes if o.ok and o.attempts > 1]
    steps.note(f"{len(outcomes)} requests, {len(retried)} retried, {len(failed)} failed "
               f"({len(outcomes) / max(duration, 1):.0f} req/s during the deletion)")  # fmt: skip
    assert not failed, failed[:5]
    assert {o.model_version for o in outcomes} == {"3"}
    wait_events_stored(life.events_url, life.answered, timeout=120)
    steps.note(f"all {len(life.answered)} answered predictions of the run are in PostgreSQL")
    assert cluster.get("deployment", RUNTIME)["metadata"]["generation"] == generation
    status = life.resource_status()
    assert (status["servingVersion"], status["failedVersion"]) == ("3", "4"), status
    assert all(PINNED_URI.match(uri) for uri in pinned_uris(cluster).values())
    for pod in cluster.pods(OPERATOR):
        log = cluster.logs(pod["metadata"]["name"])
        assert "Forbidden" not in log and " 403" not in log, log[-3000:]


def test_7_a_canary_on_real_pods_is_analysed_and_promoted(life: Lifecycle) -> None:
    canary_on_real_pods(life)
