"""Settings of the serving runtime, read from ``ARTPULSE_*`` variables when a model loads.

MLServer's own settings (ports, host, parallel workers) stay in MLServer's ``MLSERVER_*``
variables; these are the ArtPulse-specific knobs of the model it serves.
"""

from __future__ import annotations

import os
from pathlib import Path

from pydantic import Field, model_validator

from artpulse_contract.backoff import Backoff
from artpulse_contract.events.recorder import DEFAULT_FLUSH_INTERVAL, DEFAULT_MAX_QUEUE
from artpulse_contract.imaging import PILLOW_BOMB_PIXELS, DecodeLimits
from artpulse_contract.settings import ArtPulseSettings
from artpulse_runtime.codecs import RequestLimits

RENAMED_DECODE_THREADS = "ARTPULSE_DECODE_THREADS"
"""The setting ``decode_processes`` replaced; refused by name when set."""


def decode_processes_for(cores: int) -> int:
    """Decode workers for ``cores`` CPUs: one per core, and one more when there are several
    (it keeps every core decoding while another worker waits for the event loop); on one core
    a second worker only makes two decodes share it (bench/serve.py)."""
    return cores + 1 if cores > 1 else 1


class ServingSettings(ArtPulseSettings):
    """What the runtime loads, how it retries, how it decodes, and whether it records events."""

    decode_processes: int = Field(default=0, ge=0)
    """Worker processes decoding images, one image at a time each; 0 means
    ``decode_processes_for`` the CPUs this process may use (README: sizing for N cores)."""

    record_events: bool = True
    """Record every prediction in the event store (``ARTPULSE_EVENTS_URL``)."""

    event_queue_size: int = Field(default=DEFAULT_MAX_QUEUE, ge=1)
    """Most events held in memory (while the store is down they move to the spool every
    flush interval); events beyond it are dropped and counted."""

    event_flush_interval: float = Field(default=DEFAULT_FLUSH_INTERVAL, gt=0.0)
    """Longest time, in seconds, an event waits in memory before it is written (or, while
    the store is down, spooled): what a killed process can lose."""

    event_spool_dir: Path | None = None
    """Folder of the on-disk event spool; unset means ``<state dir>/event-spool``."""

    event_spool_max_bytes: int = Field(default=512 * 1024 * 1024, ge=0)
    """Largest size of the event spool, in bytes; 0 turns the spool off."""

    outcome_interval: float = Field(default=5.0, gt=0.0)
    """Seconds between writes of the serving outcomes (requests answered and failed, latency
    histogram, per model version) to the event store; with ``record_events`` only."""

    max_image_bytes: int = Field(default=DecodeLimits.max_bytes, ge=1)
    """Largest accepted encoded image, in bytes."""

    max_image_pixels: int = Field(default=DecodeLimits.max_pixels, ge=1, le=PILLOW_BOMB_PIXELS)
    """Largest accepted declared width x height of an image (at most Pillow's own bound)."""

    decode_pixels_in_flight: int = Field(default=48_000_000, ge=1)
    """Pixels of images being decoded at once, all workers together; a larger image waits
    for the others and then decodes alone. Bounds decode memory (about 7 bytes a pixel)."""

    max_images_per_request: int = Field(default=RequestLimits.max_images, ge=1)
    """Most images one request may carry."""

    max_feature_rows_per_request: int = Field(default=RequestLimits.max_rows, ge=1)
    """Most feature rows one request may carry."""

    max_request_id_length: int = Field(default=RequestLimits.max_request_id_length, ge=36)
    """Longest request id accepted (longer ones are refused, never cut or echoed); at least
    36, the length of the UUID MLServer gives a request that brings none."""

    load_retry_initial: float = Field(default=0.5, gt=0.0)
    """First delay, in seconds, before retrying a model load that failed."""

    load_retry_max: float = Field(default=30.0, gt=0.0)
    """Longest delay, in seconds, between retries of a failing model load (at least the first)."""

    reload_attempts: int = Field(default=3, ge=1)
    """Attempts a repository-API reload makes before failing (the old model keeps serving)."""

    @model_validator(mode="after")
    def _no_decode_threads(self) -> ServingSettings:
        # Renamed when decoding moved to worker processes; ignored, it would leave the default
        # counting the node's CPUs (not the pod's limit), a worker and its memory for each.
        if RENAMED_DECODE_THREADS in os.environ:
            raise ValueError(
                f"{RENAMED_DECODE_THREADS} is no longer read: images are decoded in worker "
                "processes; set ARTPULSE_DECODE_PROCESSES instead (README: sizing for N cores)"
            )
        return self

    @model_validator(mode="after")
    def _largest_image_can_decode(self) -> ServingSettings:
        # Not strictly needed (a larger image waits, then decodes alone), but a budget below
        # one full-size image is almost always a typo.
        if self.decode_pixels_in_flight < self.max_image_pixels:
            raise ValueError(
                f"ARTPULSE_DECODE_PIXELS_IN_FLIGHT ({self.decode_pixels_in_flight}) must be at "
                f"least ARTPULSE_MAX_IMAGE_PIXELS ({self.max_image_pixels})"
            )
        return self

    @model_validator(mode="after")
    def _retries_grow(self) -> ServingSettings:
        if self.load_retry_max < self.load_retry_initial:
            raise ValueError(
                f"ARTPULSE_LOAD_RETRY_MAX ({self.load_retry_max}) must be at least "
                f"ARTPULSE_LOAD_RETRY_INITIAL ({self.load_retry_initial})"
            )
        return self

    @property
    def load_retry(self) -> Backoff:
        """The schedule of model-load retries."""
        return Backoff(self.load_retry_initial, self.load_retry_max)

    @property
    def resolved_event_spool_dir(self) -> Path:
        """The spool folder in force, with the state-folder default filled in."""
        return self.event_spool_dir or self.state_dir.resolve() / "event-spool"

    @property
    def request_limits(self) -> RequestLimits:
        """The per-request bounds in force."""
        return RequestLimits(
            max_images=self.max_images_per_request,
            max_rows=self.max_feature_rows_per_request,
            max_request_id_length=self.max_request_id_length,
            max_image_bytes=self.max_image_bytes,
        )

    @property
    def decode_limits(self) -> DecodeLimits:
        """The image limits in force."""
        return DecodeLimits(max_bytes=self.max_image_bytes, max_pixels=self.max_image_pixels)

    @property
    def resolved_decode_processes(self) -> int:
        """Number of decode worker processes, with the default for this process's CPUs."""
        if self.decode_processes > 0:
            return self.decode_processes
        return decode_processes_for(len(os.sched_getaffinity(0)))
