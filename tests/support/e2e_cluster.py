"""The e2e's view of the cluster: objects of one namespace, Jobs, port-forwards, diagnostics."""

from __future__ import annotations

import base64
import json
import re
import subprocess
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from support.k8s import kubectl
from support.kustomize import KUBECTL, Obj
from support.polling import wait_for

Condition = dict[str, Any]
CRASH_LOOP_RESTARTS = 3


def condition(obj: Obj, kind: str) -> Condition | None:
    """The status condition of type ``kind`` of a live object, if it has one."""
    for item in obj.get("status", {}).get("conditions") or []:
        if item["type"] == kind:
            return dict(item)
    return None


def is_ready(pod: Obj) -> bool:
    """Whether a pod is Ready and not being deleted."""
    ready = condition(pod, "Ready")
    return bool(
        ready and ready["status"] == "True" and not pod["metadata"].get("deletionTimestamp")
    )


@dataclass
class Cluster:
    """kubectl bound to one kubeconfig and namespace."""

    kubeconfig: str
    namespace: str
    rendered: list[Obj] = field(default_factory=list)
    """The objects of the overlay as rendered (before the apply left anything out)."""
    applied_at: float = 0.0
    """When the overlay was applied (seconds since the epoch)."""
    artifacts: Path = Path(".")
    """Where the run keeps logs worth reading afterwards."""

    def kubectl(self, *args: str, stdin: str | None = None, timeout: float = 120) -> str:
        """kubectl in the namespace; raise with its stderr on failure."""
        return kubectl(self.kubeconfig, "-n", self.namespace, *args, stdin=stdin, timeout=timeout)

    def get(self, kind: str, name: str) -> Obj:
        """One live object, as JSON."""
        return dict(json.loads(self.kubectl("get", kind, name, "-o", "json")))

    def items(self, kind: str, selector: str | None = None) -> list[Obj]:
        """Live objects of ``kind`` (optionally ``-l selector``)."""
        args = ["get", kind, "-o", "json"] + (["-l", selector] if selector else [])
        return list(json.loads(self.kubectl(*args))["items"])

    def pods(self, app: str) -> list[Obj]:
        """The pods of component ``app`` (label app.kubernetes.io/name)."""
        return self.items("pod", f"app.kubernetes.io/name={app}")

    def secret(self, name: str) -> dict[str, str]:
        """A Secret's data, decoded."""
        data = self.get("secret", name)["data"]
        return {key: base64.b64decode(value).decode() for key, value in data.items()}

    def service_address(self, name: str, port: str) -> str:
        """``clusterIP:port`` of a Service port (the host reaches ClusterIPs on local-node)."""
        service = self.get("service", name)
        number = next(p["port"] for p in service["spec"]["ports"] if p["name"] == port)
        return f"{service['spec']['clusterIP']}:{number}"

    def assert_no_crash_loop(self, limit: int = CRASH_LOOP_RESTARTS) -> None:
        """Fail at once, with the log, when a container has restarted ``limit`` times or a
        Job has lost ``limit`` pods: waiting out a timeout would only hide the cause."""
        for job in self.items("job"):
            if job.get("status", {}).get("failed", 0) >= limit:
                name = job["metadata"]["name"]
                pods = self.items("pod", f"job-name={name}")
                tails = {p["metadata"]["name"]: self.pod_log_tail(p) for p in pods[:2]}
                raise AssertionError(f"Job {name} lost {limit} pods; logs: {tails}")
        for pod in self.items("pod"):
            for status in pod.get("status", {}).get("containerStatuses") or []:
                if status.get("restartCount", 0) >= limit:
                    name = pod["metadata"]["name"]
                    log = self.logs(name, status["name"], previous=True)[-3000:]
                    raise AssertionError(f"{name}/{status['name']} restarted {limit} times:\n{log}")

    def pod_log_tail(self, pod: Obj, chars: int = 1500) -> str:
        """The end of the log of the pod's first container that failed (or its last one)."""
        spec = pod["spec"]
        names = [c["name"] for c in spec.get("initContainers", []) + spec["containers"]]
        statuses = pod.get("status", {})
        for status in statuses.get("initContainerStatuses", []) + statuses.get(
            "containerStatuses", []
        ):
            if status.get("state", {}).get("terminated", {}).get("exitCode"):
                return self.logs(pod["metadata"]["name"], status["name"])[-chars:]
        return self.logs(pod["metadata"]["name"], names[-1])[-chars:]

    def wait_job(self, name: str, timeout: float) -> str:
        """Wait until Job ``name`` has finished; return ``Complete`` or ``Failed``."""

        def finished() -> str | None:
            self.assert_no_crash_loop()
            job = self.get("job", name)
            for kind in ("Complete", "Failed"):
                found = condition(job, kind)
                if found and found["status"] == "True":
                    return kind
            return None

        return wait_for(f"Job {name} to finish", finished, timeout, interval=1.0)

    def logs(self, pod: str, container: str | None = None, previous: bool = False) -> str:
        """A container's log (empty when there is none)."""
        args = ["logs", pod] + (["-c", container] if container else [])
        args += ["--previous"] if previous else []
        try:
            return self.kubectl(*args, timeout=60)
        except AssertionError as error:
            return f"({error})"

    def diagnostics(self, log_lines: int = 150) -> str:
        """``kubectl describe`` of every workload, each container's log tail, and the events."""
        parts = []
        for args in (
            ["get", "all,pvc,artpulsemodels", "-o", "wide"],
            ["describe", "artpulsemodels,deployments,statefulsets,jobs,pods"],
            ["get", "events", "--sort-by=.lastTimestamp"],
        ):
            try:
                parts.append(f"$ kubectl {' '.join(args)}\n{self.kubectl(*args, timeout=60)}")
            except AssertionError as error:
                parts.append(str(error))
        for pod in self.items("pod"):
            name = pod["metadata"]["name"]
            spec = pod["spec"]
            for container in spec.get("initContainers", []) + spec["containers"]:
                for previous in (False, True):
                    text = self.logs(name, container["name"], previous)
                    if previous and text.startswith("("):
                        continue
                    tail = "\n".join(text.splitlines()[-log_lines:])
                    label = " (previous)" if previous else ""
                    parts.append(f"--- log {name}/{container['name']}{label}\n{tail}")
        return "\n\n".join(parts)


@contextmanager
def port_forward(cluster: Cluster, target: str, port: int) -> Iterator[int]:
    """``kubectl port-forward target :port`` for the block; yields the local port."""
    process = subprocess.Popen(
        [str(KUBECTL), "--kubeconfig", cluster.kubeconfig, "-n", cluster.namespace,
         "port-forward", target, f":{port}", "--address", "127.0.0.1"],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )  # fmt: skip
    try:
        assert process.stdout is not None
        deadline = time.monotonic() + 60
        line = ""
        while time.monotonic() < deadline:
            line = process.stdout.readline()
            found = re.search(r"Forwarding from 127\.0\.0\.1:(\d+)", line)
            if found:
                # kubectl prints a line per connection: keep its pipe drained.
                threading.Thread(target=process.stdout.read, daemon=True).start()
                yield int(found.group(1))
                return
            if not line and process.poll() is not None:
                break
        raise AssertionError(f"kubectl port-forward {target} did not start: {line!r}")
    finally:
        process.terminate()
        process.wait(timeout=30)
