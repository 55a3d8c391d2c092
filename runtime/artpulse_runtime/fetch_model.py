"""``python -m artpulse_runtime.fetch_model TRACKING_URI MODEL_URI FOLDER``: resolve a model URI
in the registry and download that version's files into FOLDER, in a process of its own.

This is the server's only use of MLflow, and the costly part of its start-up: importing MLflow
and opening the registry's store take seconds of CPU. In a process of its own it runs on
another core while the server imports MLServer and starts its listeners (``fetching``), and
the server itself never imports MLflow. An alias is resolved here, once, to the pinned version
whose files are downloaded. Prints one JSON line, ``{"name", "version", "path"}``, or
``{"error": ...}`` with exit status 1 when the version cannot be loaded now (bad URI,
registry unreachable, no such version or alias).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import mlflow

from artpulse_contract.registry.connection import client_for, limit_http_waits, use_registry
from artpulse_contract.registry.failures import RegistryError
from artpulse_contract.registry.lookups import resolve_reference
from artpulse_contract.registry.uris import InvalidModelURI, parse_model_uri, pinned_uri
from artpulse_runtime.fetching import ModelLoadError

USAGE = "usage: python -m artpulse_runtime.fetch_model TRACKING_URI MODEL_URI FOLDER"


def resolve_version(tracking_uri: str, uri: str) -> str:
    """The registry version ``uri`` names now in the registry at ``tracking_uri``."""
    try:
        reference = parse_model_uri(uri)
    except InvalidModelURI as error:
        raise ModelLoadError(str(error)) from error
    try:
        return str(resolve_reference(client_for(tracking_uri), reference).version)
    except RegistryError as error:
        raise ModelLoadError(f"{reference.uri}: {error}") from error


def download_version(tracking_uri: str, uri: str, folder: Path) -> dict[str, str]:
    """Resolve ``uri`` and download the pinned version's files under ``folder``."""
    limit_http_waits()
    version = resolve_version(tracking_uri, uri)
    name = parse_model_uri(uri).name
    pinned = pinned_uri(name, version)
    use_registry(tracking_uri)
    try:
        path = mlflow.artifacts.download_artifacts(artifact_uri=pinned, dst_path=str(folder))
    except Exception as exc:  # whatever the artifact store raises, the load failed
        raise ModelLoadError(f"{pinned} (from {uri}): loading failed: {exc}") from exc
    return {"name": name, "version": version, "path": path}


def main(argv: list[str]) -> int:
    """Fetch the model the arguments name; print the JSON line; return the exit status."""
    if len(argv) != 3:
        print(USAGE, file=sys.stderr)
        return 2
    tracking_uri, uri, folder = argv
    try:
        answer = download_version(tracking_uri, uri, Path(folder))
    except ModelLoadError as error:
        print(json.dumps({"error": str(error)}), flush=True)
        return 1
    print(json.dumps(answer), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
