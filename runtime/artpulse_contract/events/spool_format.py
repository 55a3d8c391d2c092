"""The bytes of one spool segment: a checked header, then the events with their ids.

Layout (little-endian): magic ``APSPOOL1``, event count (u32), payload length (u32),
CRC-32 of the payload (u32); then per event: its 16-byte id, the timestamp in microseconds
since the epoch (i64, UTC), the five features and five probabilities (f64, exact), and the
request id, model name, model version, input kind and label (u32 length + UTF-8 each).
A segment that does not parse exactly, or whose CRC differs, is ``CorruptSegmentError``.
"""

from __future__ import annotations

import struct
import zlib
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta

from artpulse_contract.events.ids import EVENT_ID_BYTES
from artpulse_contract.events.model import PredictionEvent

MAGIC = b"APSPOOL1"
HEADER = struct.Struct("<8sIII")
_FIXED = struct.Struct(f"<{EVENT_ID_BYTES}sq5d5d")
_LENGTH = struct.Struct("<I")
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


class CorruptSegmentError(ValueError):
    """A segment's bytes are not what ``encode_segment`` writes; the message says how."""


def _micros(moment: datetime) -> int:
    delta = moment - _EPOCH
    return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds


def encode_event(event: PredictionEvent, event_id: bytes) -> bytes:
    """One event's record (without the segment header)."""
    parts = [_FIXED.pack(event_id, _micros(event.timestamp), *event.features, *event.probabilities)]
    for text in (
        event.request_id,
        event.model_name,
        event.model_version,
        event.input_kind,
        event.label,
    ):
        encoded = text.encode()
        parts += [_LENGTH.pack(len(encoded)), encoded]
    return b"".join(parts)


def encode_segment(records: Sequence[bytes]) -> bytes:
    """A segment holding ``records`` (from ``encode_event``), header first."""
    payload = b"".join(records)
    return HEADER.pack(MAGIC, len(records), len(payload), zlib.crc32(payload)) + payload


def segment_count(header: bytes) -> int | None:
    """The event count a segment's header declares, or None if it is not a header."""
    if len(header) < HEADER.size:
        return None
    magic, count, _, _ = HEADER.unpack_from(header)
    return int(count) if magic == MAGIC else None


def _text(data: bytes, offset: int) -> tuple[str, int]:
    (length,) = _LENGTH.unpack_from(data, offset)
    start = offset + _LENGTH.size
    if start + length > len(data):
        raise CorruptSegmentError(f"a text field runs past the end at byte {offset}")
    return data[start : start + length].decode(), start + length


def decode_segment(data: bytes) -> tuple[list[PredictionEvent], list[bytes]]:
    """The events of a segment and their ids, in the order they were written."""
    if len(data) < HEADER.size:
        raise CorruptSegmentError(f"{len(data)} bytes, shorter than a header")
    magic, count, length, checksum = HEADER.unpack_from(data)
    if magic != MAGIC:
        raise CorruptSegmentError(f"bad magic {magic!r}")
    payload = data[HEADER.size :]
    if len(payload) != length:
        raise CorruptSegmentError(f"payload is {len(payload)} bytes, header says {length}")
    if zlib.crc32(payload) != checksum:
        raise CorruptSegmentError("payload checksum does not match")
    events: list[PredictionEvent] = []
    ids: list[bytes] = []
    offset = 0
    try:
        for _ in range(count):
            event_id, micros, *values = _FIXED.unpack_from(payload, offset)
            offset += _FIXED.size
            texts = []
            for _field in range(5):
                text, offset = _text(payload, offset)
                texts.append(text)
            request_id, model_name, model_version, input_kind, label = texts
            events.append(
                PredictionEvent(
                    timestamp=_EPOCH + timedelta(microseconds=micros),
                    request_id=request_id,
                    model_name=model_name,
                    model_version=model_version,
                    input_kind=input_kind,
                    features=tuple(values[:5]),
                    label=label,
                    probabilities=tuple(values[5:]),
                )
            )
            ids.append(event_id)
    except (struct.error, UnicodeDecodeError, ValueError) as exc:
        raise CorruptSegmentError(f"event {len(events)} does not parse: {exc}") from exc
    if offset != len(payload):
        raise CorruptSegmentError(f"{len(payload) - offset} bytes left after {count} events")
    return events, ids
