"""Prometheus metrics of the runtime, exported on MLServer's metrics endpoint (port 8082).

They live on prometheus_client's default registry, which MLServer's endpoint serves (with
``parallel_workers > 0`` it switches prometheus_client to multiprocess files before the model
loads, and these metrics follow). They are created lazily, once per process: MLServer
re-imports the runtime module on every load, so they must not be module-level there.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from prometheus_client import Counter, Gauge, Histogram

from artpulse_contract.constants import LABELS
from artpulse_contract.events import EventRecorder
from artpulse_runtime.metric_children import Children

PREDICTIONS_TOTAL = "artpulse_predictions"
FEATURE_SECONDS = "artpulse_feature_extraction_seconds"
DECODE_FAILURES_TOTAL = "artpulse_image_decode_failures"
EVENT_QUEUE_DEPTH = "artpulse_event_queue_depth"
EVENTS_DROPPED_TOTAL = "artpulse_events_dropped"
EVENTS_WRITTEN_TOTAL = "artpulse_events_written"
EVENTS_SPOOLED = "artpulse_events_spooled"
SPOOL_BYTES = "artpulse_event_spool_bytes"
SPOOL_CORRUPT_TOTAL = "artpulse_event_spool_corrupt_segments"
REQUESTS_REFUSED_TOTAL = "artpulse_requests_refused"

_FEATURE_BUCKETS = (0.0005, 0.001, 0.002, 0.004, 0.008, 0.016, 0.032, 0.064, 0.128, 0.256, 1.0)


@dataclass(frozen=True)
class ServingMetrics:
    """The runtime's metrics (names above; Prometheus adds ``_total`` to counters)."""

    predictions: Counter
    feature_seconds: Histogram
    decode_failures: Counter
    event_queue_depth: Gauge
    events_dropped: Counter
    events_written: Counter
    events_spooled: Gauge
    spool_bytes: Gauge
    spool_corrupt_segments: Counter
    requests_refused: Counter
    _predictions: Children[Counter] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_predictions", Children(self.predictions))

    def count_predictions(
        self, model_name: str, model_version: str, input_kind: str, indices: np.ndarray
    ) -> None:
        """Count a request's predicted labels (class indices), one increment per label."""
        counts: dict[int, int] = {}
        for index in indices.tolist():
            counts[index] = counts.get(index, 0) + 1
        for index, count in counts.items():
            self._predictions(model_name, model_version, LABELS[index], input_kind).inc(count)


_METRICS: ServingMetrics | None = None


def serving_metrics() -> ServingMetrics:
    """The process's metrics, created on first use."""
    global _METRICS
    if _METRICS is None:
        _METRICS = ServingMetrics(
            predictions=Counter(
                PREDICTIONS_TOTAL,
                "Predictions returned, by model version, predicted label and input kind",
                ["model_name", "model_version", "label", "input_kind"],
            ),
            feature_seconds=Histogram(
                FEATURE_SECONDS,
                "Time to decode, resize and compute the features of one image",
                buckets=_FEATURE_BUCKETS,
            ),
            decode_failures=Counter(
                DECODE_FAILURES_TOTAL,
                "Image inputs rejected, by reason (invalid base64, not an image, too large, ...)",
                ["reason"],
            ),
            event_queue_depth=Gauge(
                EVENT_QUEUE_DEPTH,
                "Prediction events waiting to be written to the event store",
                multiprocess_mode="livesum",
            ),
            events_dropped=Counter(
                EVENTS_DROPPED_TOTAL,
                "Prediction events dropped: memory queue and on-disk spool both full",
            ),
            events_written=Counter(
                EVENTS_WRITTEN_TOTAL, "Prediction events written to the event store"
            ),
            events_spooled=Gauge(
                EVENTS_SPOOLED,
                "Prediction events waiting in the on-disk spool for the event store",
                multiprocess_mode="livesum",
            ),
            spool_bytes=Gauge(
                SPOOL_BYTES,
                "Bytes of the on-disk event spool in use",
                multiprocess_mode="livesum",
            ),
            spool_corrupt_segments=Counter(
                SPOOL_CORRUPT_TOTAL,
                "Spool segments found corrupt, set aside and not replayed",
            ),
            requests_refused=Counter(
                REQUESTS_REFUSED_TOTAL,
                "Requests refused before or instead of a prediction, by reason",
                ["reason"],
            ),
        )
    return _METRICS


class RecorderGauges:
    """Mirrors one EventRecorder's queue, spool and totals into the metrics."""

    def __init__(self, recorder: EventRecorder, metrics: ServingMetrics) -> None:
        self._recorder = recorder
        self._metrics = metrics
        self._dropped = 0
        self._written = 0
        self._corrupt = 0

    def sync(self) -> None:
        """Publish the recorder's depths, and what it dropped, wrote or set aside since the
        last sync."""
        recorder, metrics = self._recorder, self._metrics
        metrics.event_queue_depth.set(recorder.queue_depth)
        metrics.events_spooled.set(recorder.spooled_events)
        metrics.spool_bytes.set(recorder.spool_bytes)
        dropped, written = recorder.dropped_total, recorder.written_total
        corrupt = recorder.corrupt_segments_total
        if dropped > self._dropped:
            metrics.events_dropped.inc(dropped - self._dropped)
        if written > self._written:
            metrics.events_written.inc(written - self._written)
        if corrupt > self._corrupt:
            metrics.spool_corrupt_segments.inc(corrupt - self._corrupt)
        self._dropped, self._written, self._corrupt = dropped, written, corrupt
