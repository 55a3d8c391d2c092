"""Bring the platform up for the e2e the way a user does: ``make images``, then the dev overlay
applied with kubectl, then the e2e's two documented adjustments.

What a v1.20 node does not serve (the batch/v1 CronJobs) is left out of the apply and listed;
the e2e runs their job templates as Jobs instead. The CRD and the ArtPulseModel arrive in one
apply, so the first apply can end with "no matches for kind": it is applied again once the CRD
is established, as the README tells users to.
"""

from __future__ import annotations

import json
import subprocess
import time
from pathlib import Path

from support.e2e_cluster import Cluster
from support.k8s import CRD_KIND, as_yaml, kubectl, split_served
from support.kustomize import KUBECTL, KUSTOMIZE_DIR, REPO, Obj, containers, workloads

DEV_OVERLAY = KUSTOMIZE_DIR / "overlays" / "dev"
RUNTIME = "artpulse-runtime"
RUNTIME_REPLICAS = 2
"""Two serving pods: a promotion must reach every pod, and a deleted pod leaves one serving."""
PROGRESS_DEADLINE_SECONDS = 60
"""The runtime Deployment's progress deadline in the e2e (Kubernetes' default is 600 s): the
broken-version step waits for it before the operator rolls back."""


def overlay_images(objects: list[Obj]) -> list[str]:
    """Every image the rendered objects run."""
    found = {
        container["image"]
        for _, template in workloads(objects)
        for container in containers(template["spec"])
    }
    return sorted(found)


def image_size(image: str) -> int:
    """The image's size in bytes, as ``docker image ls`` counts it (0 when it is missing)."""
    result = subprocess.run(
        ["docker", "image", "inspect", "-f", "{{.Size}}", image],
        capture_output=True,
        text=True,
        check=False,
    )
    return int(result.stdout.strip()) if result.returncode == 0 else 0


def build_images(objects: list[Obj], log_path: Path) -> list[str]:
    """``make images`` (legacy builder), then check that the node has every image the overlay
    names; return a line per image with its size, and the build time."""
    start = time.monotonic()
    with log_path.open("w") as log:
        result = subprocess.run(
            ["make", "--no-print-directory", "images", "DOCKER_BUILD_ARGS=--network=host"],
            cwd=REPO,
            stdout=log,
            stderr=subprocess.STDOUT,
            check=False,
        )
    seconds = time.monotonic() - start
    if result.returncode != 0:
        tail = "\n".join(log_path.read_text().splitlines()[-60:])
        raise AssertionError(f"make images failed ({result.returncode}):\n{tail}")
    lines = [f"make images: {seconds:.0f} s (log: {log_path})"]
    for image in overlay_images(objects):
        size = image_size(image)
        assert size, f"the overlay runs {image}, which the node does not have"
        lines.append(f"image {image}: {size / 1e6:.0f} MB")
    return lines


def _apply(kubeconfig: str, objects: list[Obj]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(KUBECTL), "--kubeconfig", kubeconfig, "apply", "-f", "-"],
        input=as_yaml(objects),
        capture_output=True,
        text=True,
        check=False,
        timeout=300,
    )


def apply_as_a_user(cluster: Cluster) -> list[str]:
    """``kubectl apply`` of the rendered dev overlay minus the kinds the server does not serve;
    a second apply when the first came before the CRD was established."""
    kept, left_out = split_served(cluster.kubeconfig, cluster.rendered)
    names = ", ".join(f"{o['apiVersion']} {o['kind']}/{o['metadata']['name']}" for o in left_out)
    lines = [f"left out (not served by this API server): {names or 'nothing'}"]
    first = _apply(cluster.kubeconfig, kept)
    if first.returncode != 0:
        assert "no matches for kind" in first.stderr, first.stderr
        for crd in (o for o in kept if o["kind"] == CRD_KIND):
            kubectl(cluster.kubeconfig, "wait", "--for=condition=established",
                    f"crd/{crd['metadata']['name']}", "--timeout=60s")  # fmt: skip
        second = _apply(cluster.kubeconfig, kept)
        assert second.returncode == 0, second.stderr
        said = first.stderr.strip().splitlines()[0]
        lines.append(f"applied twice, the first apply said: {said}")
    lines.append(f"applied {len(kept)} objects")
    return lines


def e2e_adjustments(cluster: Cluster) -> list[str]:
    """The two changes the e2e makes to the applied overlay, both on the Deployment's spec
    (not its pod template, so nothing rolls): replicas and the progress deadline."""
    patch = {
        "spec": {"replicas": RUNTIME_REPLICAS, "progressDeadlineSeconds": PROGRESS_DEADLINE_SECONDS}
    }
    cluster.kubectl("patch", "deployment", RUNTIME, "--type=merge", "-p", json.dumps(patch))
    return [
        f"e2e adjustment: deployment/{RUNTIME} replicas {RUNTIME_REPLICAS}, "
        f"progressDeadlineSeconds {PROGRESS_DEADLINE_SECONDS}"
    ]
