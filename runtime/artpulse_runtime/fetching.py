"""Getting a registered version's files from the registry, in a helper process.

``fetched`` runs ``python -m artpulse_runtime.fetch_model`` (MLflow lives there, not in the
server) and yields the resolved version and the folder its files were downloaded to, removed
afterwards. ``prefetch`` starts that helper for the configured model before the server imports
MLServer (``python -m artpulse_runtime.server``), so the two start-ups run on two cores; the
model's first load then takes the helper's answer instead of starting another.
"""

from __future__ import annotations

import atexit
import contextlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

FETCH_MODULE = "artpulse_runtime.fetch_model"

FETCH_TIMEOUT_SECONDS = 300.0
"""Longest a helper may take (its registry requests have their own, shorter timeouts)."""


class ModelLoadError(RuntimeError):
    """The configured model cannot be loaded right now (bad URI, registry down, no such version)."""


@dataclass(frozen=True)
class FetchedModel:
    """A registry version resolved and downloaded: its name, version and model folder."""

    name: str
    version: str
    path: Path


class PendingFetch:
    """A helper process fetching one model URI into a temporary folder of its own."""

    def __init__(self, tracking_uri: str, uri: str) -> None:
        """Start the helper for ``uri`` in the registry at ``tracking_uri``."""
        self.key = (tracking_uri, uri)
        self.folder = Path(tempfile.mkdtemp(prefix="artpulse-model-"))
        environment = {**os.environ, "MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR": "false"}
        self._process = subprocess.Popen(
            [sys.executable, "-m", FETCH_MODULE, tracking_uri, uri, str(self.folder)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=environment,
            text=True,
        )

    def result(self, timeout: float = FETCH_TIMEOUT_SECONDS) -> FetchedModel:
        """Wait for the helper; ``ModelLoadError`` when it could not fetch the model."""
        try:
            out, err = self._process.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.discard()
            raise ModelLoadError(
                f"{self.key[1]}: fetching took more than {timeout:.0f} s; gave up"
            ) from None
        lines = out.strip().splitlines()
        try:
            answer = json.loads(lines[-1]) if lines else {}
        except ValueError:
            answer = {}
        if "path" in answer:
            return FetchedModel(str(answer["name"]), str(answer["version"]), Path(answer["path"]))
        self.discard()
        if "error" in answer:
            raise ModelLoadError(str(answer["error"]))
        last = err.strip().splitlines()[-1:] or ["no output"]
        raise ModelLoadError(
            f"{self.key[1]}: the fetching process exited with status "
            f"{self._process.returncode}: {last[0]}"
        )

    def discard(self) -> None:
        """Stop the helper if it still runs and remove its folder."""
        if self._process.poll() is None:
            self._process.kill()
            self._process.wait()
        shutil.rmtree(self.folder, ignore_errors=True)


_PREFETCHED: list[PendingFetch] = []


def prefetch(tracking_uri: str, uri: str) -> None:
    """Start fetching ``uri`` now for the first ``fetched`` of the same URI to take over."""
    pending = PendingFetch(tracking_uri, uri)
    _PREFETCHED.append(pending)
    atexit.register(_discard_unclaimed)


def prefetch_configured_model() -> bool:
    """``prefetch`` the model the environment configures (``ARTPULSE_MODEL_URI`` in the
    registry at ``MLFLOW_TRACKING_URI``) when this process will load it itself, that is
    without MLServer's worker processes (``MLSERVER_PARALLEL_WORKERS=0``). True when started.

    Invalid settings start nothing: the model's load reports them.
    """
    from pydantic import ValidationError

    from artpulse_contract.settings import ArtPulseSettings

    if os.environ.get("MLSERVER_PARALLEL_WORKERS", "").strip() != "0":
        return False
    try:
        settings = ArtPulseSettings()
    except ValidationError:
        return False
    prefetch(settings.resolved_tracking_uri, settings.model_uri)
    return True


def _discard_unclaimed() -> None:
    while _PREFETCHED:
        _PREFETCHED.pop().discard()


@contextlib.contextmanager
def fetched(tracking_uri: str, uri: str) -> Iterator[FetchedModel]:
    """The version ``uri`` names, downloaded for the block; its folder is removed after."""
    key = (tracking_uri, uri)
    pending = next((p for p in _PREFETCHED if p.key == key), None)
    if pending is not None:
        _PREFETCHED.remove(pending)
    else:
        pending = PendingFetch(tracking_uri, uri)
    try:
        yield pending.result()
    finally:
        pending.discard()
