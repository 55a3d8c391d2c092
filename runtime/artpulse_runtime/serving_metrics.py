"""Prometheus metrics of the runtime, exported on MLServer's metrics endpoint (port 8082).

They live on prometheus_client's default registry, which MLServer's endpoint serves (with
``parallel_workers > 0`` it switches prometheus_client to multiprocess files before the model
loads, and these metrics follow). They are created lazily, once per process: MLServer
re-imports the runtime module on every load, so they must not be module-level there.
"""

from __future__ import annotations

from dataclasses import dataclass

from prometheus_client import Counter, Gauge, Histogram

from artpulse_runtime.events import EventRecorder

PREDICTIONS_TOTAL = "artpulse_predictions"
FEATURE_SECONDS = "artpulse_feature_extraction_seconds"
DECODE_FAILURES_TOTAL = "artpulse_image_decode_failures"
EVENT_QUEUE_DEPTH = "artpulse_event_queue_depth"
EVENTS_DROPPED_TOTAL = "artpulse_events_dropped"
EVENTS_WRITTEN_TOTAL = "artpulse_events_written"

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
                "Prediction events dropped because the event queue was full",
            ),
            events_written=Counter(
                EVENTS_WRITTEN_TOTAL, "Prediction events written to the event store"
            ),
        )
    return _METRICS


class RecorderGauges:
    """Mirrors one EventRecorder's queue depth and drop / write totals into the metrics."""

    def __init__(self, recorder: EventRecorder, metrics: ServingMetrics) -> None:
        self._recorder = recorder
        self._metrics = metrics
        self._dropped = 0
        self._written = 0

    def sync(self) -> None:
        """Publish the recorder's queue depth and what it dropped or wrote since the last sync."""
        self._metrics.event_queue_depth.set(self._recorder.queue_depth)
        dropped, written = self._recorder.dropped_total, self._recorder.written_total
        if dropped > self._dropped:
            self._metrics.events_dropped.inc(dropped - self._dropped)
        if written > self._written:
            self._metrics.events_written.inc(written - self._written)
        self._dropped, self._written = dropped, written
