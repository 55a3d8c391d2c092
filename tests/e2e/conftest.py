"""The e2e session: a local node, both images built, the dev overlay applied, and on any failure
``kubectl describe``, every container's log and the events in the report.

``make e2e`` runs it (``pytest -m e2e tests/e2e``); ``make test`` leaves it out. It needs root,
Docker and ``../shared/k8s/local-node`` (ARTPULSE_SHARED_DIR elsewhere); ARTPULSE_E2E=skip
skips it on a laptop without them. ARTPULSE_E2E_RUNDIR names the node's run folder (so a CI
script can stop the node even if pytest is killed); ARTPULSE_E2E_ARTIFACTS where the build log
and diagnostics go.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from support.e2e_cluster import Cluster
from support.e2e_platform import (
    DEV_OVERLAY,
    apply_as_a_user,
    build_images,
    e2e_adjustments,
)
from support.kustomize import render_dir
from support.local_node import LocalNode, missing_prerequisites
from support.steps import Steps

STEPS = pytest.StashKey[Steps]()
CLUSTER = pytest.StashKey[Cluster]()
ARTIFACTS = pytest.StashKey[Path]()
FAILED_STEP = pytest.StashKey[str]()


def _terminated(signum: int, frame: Any) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


@pytest.fixture(scope="session")
def steps(pytestconfig: pytest.Config) -> Steps:
    """The run's step log, written live to the terminal."""
    reporter = pytestconfig.pluginmanager.get_plugin("terminalreporter")
    capture = pytestconfig.pluginmanager.get_plugin("capturemanager")

    def write(line: str) -> None:
        # Live, also while pytest captures the test's output.
        with capture.global_and_fixture_disabled():
            if reporter is not None:
                reporter.write_line(line)
            else:
                print(line, flush=True)

    recorder = Steps(write)
    pytestconfig.stash[STEPS] = recorder
    folder = os.environ.get("ARTPULSE_E2E_ARTIFACTS") or tempfile.mkdtemp(prefix="artpulse-e2e-")
    pytestconfig.stash[ARTIFACTS] = Path(folder)
    pytestconfig.stash[ARTIFACTS].mkdir(parents=True, exist_ok=True)
    return recorder


@pytest.fixture(scope="session")
def node(steps: Steps, pytestconfig: pytest.Config) -> Iterator[str]:
    """A started local node (its kubeconfig); stopped at the end whatever happened."""
    if os.environ.get("ARTPULSE_E2E") == "skip":
        pytest.skip("ARTPULSE_E2E=skip: the end-to-end run on a real node was not asked for")
    missing = missing_prerequisites()
    if missing:
        pytest.fail(f"the e2e needs {', '.join(missing)}; ARTPULSE_E2E=skip skips it")
    rundir = Path(
        os.environ.get("ARTPULSE_E2E_RUNDIR") or tempfile.mkdtemp(prefix="artpulse-node-")
    )
    local_node = LocalNode(rundir)
    # A SIGTERM (CI timeout, kill) unwinds through the finalizers like Ctrl-C does.
    previous = signal.signal(signal.SIGTERM, _terminated)
    try:
        with steps.step("start local-node"):
            kubeconfig = local_node.start()
        yield kubeconfig
    finally:
        with steps.step("stop local-node"):
            (pytestconfig.stash[ARTIFACTS] / "local-node-stop.log").write_text(local_node.stop())
            # The claims' and etcd's data (~200 MB); the logs stay in the run folder.
            for data in ("volumes", "cluster/etcd"):
                shutil.rmtree(rundir / data, ignore_errors=True)
        signal.signal(signal.SIGTERM, previous)


@pytest.fixture(scope="session")
def cluster(node: str, steps: Steps, pytestconfig: pytest.Config) -> Cluster:
    """Both images built, then the dev overlay applied as a user applies it, with the e2e's
    two documented adjustments; returns once every object exists."""
    objects = render_dir(DEV_OVERLAY)
    namespace = next(o["metadata"]["name"] for o in objects if o["kind"] == "Namespace")
    result = Cluster(node, namespace, objects, artifacts=pytestconfig.stash[ARTIFACTS])
    pytestconfig.stash[CLUSTER] = result
    with steps.step("build both images (make images)"):
        for line in build_images(objects, pytestconfig.stash[ARTIFACTS] / "images.log"):
            steps.note(line)
    with steps.step("kubectl apply the dev overlay"):
        result.applied_at = time.time()
        for line in apply_as_a_user(result):
            steps.note(line)
        for line in e2e_adjustments(result):
            steps.note(line)
    return result


@pytest.fixture(autouse=True)
def _after_a_failed_step(request: pytest.FixtureRequest) -> None:
    """The steps build on each other: after a failed one, the rest are skipped, not run."""
    failed = request.config.stash.get(FAILED_STEP, None)
    if failed is not None:
        pytest.skip(f"{failed} failed; this step needs what it leaves")


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Iterator[None]:
    """On a failure, attach the cluster's state (and keep it in the artifacts folder)."""
    outcome = yield
    report = outcome.get_result()  # type: ignore[attr-defined]
    if report.failed:
        item.config.stash.setdefault(FAILED_STEP, item.name)
    cluster = item.config.stash.get(CLUSTER, None)
    if not report.failed or cluster is None:
        return
    try:
        text = cluster.diagnostics()
    except (AssertionError, subprocess.SubprocessError) as error:
        text = f"could not collect diagnostics: {error}"
    path = item.config.stash[ARTIFACTS] / f"diagnostics-{item.name}-{call.when}.txt"
    path.write_text(text)
    report.sections.append((f"cluster diagnostics (also in {path})", text))


def pytest_terminal_summary(terminalreporter: Any, config: pytest.Config) -> None:
    """Every step's duration and the measured facts, after the run."""
    recorder = config.stash.get(STEPS, None)
    if recorder is not None and recorder.durations:
        terminalreporter.section("e2e steps")
        terminalreporter.write_line(recorder.summary())
        terminalreporter.write_line(f"build log and diagnostics: {config.stash[ARTIFACTS]}")
