"""MLflow's usage telemetry is off in every process ArtPulse starts, unless the user says otherwise.

``import mlflow`` (3.x) starts a client that reports usage to an outside host. ArtPulse turns it
off before anything imports MLflow: in the ``artpulse`` command, in the environment of the
MLServer processes it starts, in both images and in the manifests' ConfigMap. A user who wants
it sets ``MLFLOW_DISABLE_TELEMETRY=false``; an explicit value is never overwritten.
"""

from __future__ import annotations

from collections.abc import Mapping, MutableMapping

TELEMETRY_DEFAULTS: Mapping[str, str] = {"MLFLOW_DISABLE_TELEMETRY": "true"}
"""MLflow's own switch, set when the environment does not set it."""


def telemetry_off_by_default(environ: MutableMapping[str, str]) -> None:
    """Turn MLflow telemetry off in ``environ`` unless it already says what to do."""
    for name, value in TELEMETRY_DEFAULTS.items():
        environ.setdefault(name, value)
