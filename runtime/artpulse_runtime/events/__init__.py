"""Prediction events: the record of every prediction, read back by drift monitoring."""

from artpulse_runtime.events.model import EventChunk, PredictionEvent, events_from_predictions
from artpulse_runtime.events.recorder import EventRecorder
from artpulse_runtime.events.schema import prediction_events
from artpulse_runtime.events.store import EventStore, UnsupportedEventStoreURL

__all__ = [
    "EventChunk",
    "EventRecorder",
    "EventStore",
    "PredictionEvent",
    "UnsupportedEventStoreURL",
    "events_from_predictions",
    "prediction_events",
]
