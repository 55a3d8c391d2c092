"""Settings of the serving runtime, read from ``ARTPULSE_*`` variables when a model loads.

MLServer's own settings (ports, host, parallel workers) stay in MLServer's ``MLSERVER_*``
variables; these are the ArtPulse-specific knobs of the model it serves.
"""

from __future__ import annotations

import os

from pydantic import Field

from artpulse_runtime.imaging import DecodeLimits
from artpulse_runtime.settings import ArtPulseSettings


class ServingSettings(ArtPulseSettings):
    """What the runtime loads, how it retries, how it decodes, and whether it records events."""

    decode_threads: int = 0
    """Threads decoding and resizing images (Pillow releases the GIL); 0 means one per CPU."""

    record_events: bool = True
    """Record every prediction in the event store (``ARTPULSE_EVENTS_URL``)."""

    event_queue_size: int = 10_000
    """Events held in memory while the store is slow or down; beyond that they are dropped."""

    event_flush_interval: float = 0.5
    """Longest time, in seconds, an event waits in the queue before the writer flushes it."""

    outcome_interval: float = Field(default=5.0, gt=0)
    """Seconds between writes of the serving outcomes (requests answered and failed, latency
    histogram, per model version) to the event store; with ``record_events`` only."""

    max_image_bytes: int = DecodeLimits.max_bytes
    """Largest accepted encoded image, in bytes."""

    max_image_pixels: int = DecodeLimits.max_pixels
    """Largest accepted declared width x height of an image."""

    load_retry_initial: float = 0.5
    """First delay, in seconds, before retrying a model load that failed."""

    load_retry_max: float = 30.0
    """Longest delay, in seconds, between retries of a failing model load."""

    reload_attempts: int = 3
    """Attempts a repository-API reload makes before failing (the old model keeps serving)."""

    @property
    def decode_limits(self) -> DecodeLimits:
        """The image limits in force."""
        return DecodeLimits(max_bytes=self.max_image_bytes, max_pixels=self.max_image_pixels)

    @property
    def resolved_decode_threads(self) -> int:
        """Number of decoding threads, with the one-per-CPU default filled in."""
        if self.decode_threads > 0:
            return self.decode_threads
        return max(1, len(os.sched_getaffinity(0)))
