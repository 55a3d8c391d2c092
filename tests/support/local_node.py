"""Start and stop ``../shared/k8s/local-node`` (a real single-node Kubernetes v1.20) for the e2e.

The tool needs root and a Debian host; it starts a dockerd when none runs (and stops it again),
so the images are built after the node starts. Only one node runs per host.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

from support.kustomize import REPO

SHARED_DIR = Path(os.environ.get("ARTPULSE_SHARED_DIR", REPO.parent / "shared"))
"""The shared tools folder (``../shared`` next to the checkout unless ARTPULSE_SHARED_DIR)."""

LOCAL_NODE = SHARED_DIR / "k8s" / "local-node"
START_TIMEOUT = 600
STOP_TIMEOUT = 300


class NodeError(RuntimeError):
    """local-node could not start; the message holds its output's tail."""


def missing_prerequisites() -> list[str]:
    """What this host lacks to run the e2e (empty when it can)."""
    missing = []
    if os.geteuid() != 0:
        missing.append("root (local-node and Docker need it)")
    if not os.access(LOCAL_NODE, os.X_OK):
        missing.append(f"{LOCAL_NODE} (set ARTPULSE_SHARED_DIR to the shared tools folder)")
    if shutil.which("docker") is None:
        missing.append("the docker command (run `local-node install`)")
    return missing


@dataclass
class LocalNode:
    """One local-node run in ``rundir``."""

    rundir: Path

    def _run(self, command: str, timeout: float) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [str(LOCAL_NODE), command, str(self.rundir)],
            capture_output=True,
            text=True,
            check=False,
            timeout=timeout,
        )

    def start(self) -> str:
        """Start the node and return its kubeconfig path; raise NodeError with the log."""
        result = self._run("start", START_TIMEOUT)
        found = re.search(r"^export KUBECONFIG=(\S+)$", result.stdout, re.MULTILINE)
        if result.returncode != 0 or found is None:
            tail = result.stderr[-4000:]
            raise NodeError(f"local-node start failed ({result.returncode}):\n{tail}")
        return found.group(1)

    def stop(self) -> str:
        """Stop everything this run started (safe to repeat); return the tool's log."""
        return self._run("stop", STOP_TIMEOUT).stderr
