"""Prediction events: the record of every prediction, read back by drift monitoring."""

from artpulse_contract.events.engine import UnsupportedEventStoreURL
from artpulse_contract.events.model import EventChunk, PredictionEvent, events_from_predictions
from artpulse_contract.events.recorder import EventRecorder
from artpulse_contract.events.schema import prediction_events
from artpulse_contract.events.store import EventStore

__all__ = [
    "EventChunk",
    "EventRecorder",
    "EventStore",
    "PredictionEvent",
    "UnsupportedEventStoreURL",
    "events_from_predictions",
    "prediction_events",
]
