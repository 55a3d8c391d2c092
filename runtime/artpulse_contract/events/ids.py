"""Event ids: 16 bytes that make a replayed write idempotent.

Each batch gets 12 random bytes and every event of it its 4-byte index: no coordination
between processes, safe across forks and restarts, and a collision needs two of the 2**96
batch prefixes to meet. The store keeps the id in a unique column, so a batch written
twice (a replayed spool segment, a commit whose acknowledgement was lost) is stored once.
"""

from __future__ import annotations

import os

EVENT_ID_BYTES = 16
_PREFIX_BYTES = 12


def new_event_ids(count: int) -> list[bytes]:
    """``count`` fresh, distinct event ids."""
    prefix = os.urandom(_PREFIX_BYTES)
    return [
        prefix + index.to_bytes(EVENT_ID_BYTES - _PREFIX_BYTES, "big") for index in range(count)
    ]
