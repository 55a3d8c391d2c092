"""Settings of the ArtPulse server front (``ARTPULSE_*``): keys, request bounds, liveness.

The defaults fit a pod with a 1 GiB memory limit (see ``bench/memory.py``): one request
may carry one full-size image (20 MiB encoded is 27 MiB of base64), and at most two such
bodies are held at once; further requests get 503 until memory is free again.
"""

from __future__ import annotations

from pathlib import Path

from pydantic import Field, model_validator

from artpulse_contract.settings import ArtPulseSettings

MIB = 1024 * 1024


class ServerSettings(ArtPulseSettings):
    """Who may call the server, how large a request may be, and when it is no longer live."""

    api_keys_file: Path | None = None
    """File of SHA-256 digests of the API keys accepted for inference and metadata; unset
    means no authentication (health and readiness are always open)."""

    admin_keys_file: Path | None = None
    """File of digests of operator keys for the model repository API (load, unload,
    index); unset means the repository API is closed to everyone."""

    max_request_bytes: int = Field(default=32 * MIB, ge=1024)
    """Largest REST request body, in bytes (after gzip decoding); larger ones get 413
    before they are read."""

    max_grpc_message_bytes: int = Field(default=32 * MIB, ge=1024)
    """Largest gRPC message received or sent, in bytes (RESOURCE_EXHAUSTED beyond)."""

    max_in_flight_bytes: int = Field(default=64 * MIB, ge=1024)
    """Total bytes of request bodies being handled at once; a request that would exceed it
    gets 503 / RESOURCE_EXHAUSTED at once (retry later)."""

    liveness_grace_seconds: float = Field(default=30.0, ge=0)
    """How long a model that was serving may be gone (unloaded, failed reload) before
    ``/v2/health/live`` fails and Kubernetes restarts the container."""

    api_docs: bool = False
    """Serve MLServer's Swagger pages and OpenAPI documents (``/v2/docs``, ...)."""

    @model_validator(mode="after")
    def _one_request_fits_the_budget(self) -> ServerSettings:
        largest = max(self.max_request_bytes, self.max_grpc_message_bytes)
        if self.max_in_flight_bytes < largest:
            raise ValueError(
                f"ARTPULSE_MAX_IN_FLIGHT_BYTES ({self.max_in_flight_bytes}) must be at least "
                f"the largest single request ({largest}), or that request could never run"
            )
        return self
