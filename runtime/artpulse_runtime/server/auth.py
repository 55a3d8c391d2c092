"""API keys: minted at random, stored only as SHA-256 digests, checked in constant time.

A keys file holds one key digest per line: 64 hex digits, optionally followed by a name
(``<digest>  client-a``); blank lines and ``#`` comments are ignored. ``sha256sum`` output is
a valid line (``printf %s "$KEY" | sha256sum``), and so is what ``artpulse api-key`` prints.
A client presents the key itself, as ``Authorization: Bearer <key>`` or ``X-API-Key: <key>``
(REST) or the same names in lower case as gRPC metadata.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

KEY_PREFIX = "ap_"
"""Minted keys start with this, so a leaked key is recognisable in a scan."""

AUTHORIZATION = "authorization"
API_KEY_HEADER = "x-api-key"
"""Header (REST) and metadata (gRPC) names a key may arrive in, in lower case."""

_BEARER = re.compile(r"^\s*bearer\s+(?P<key>\S+)\s*$", re.IGNORECASE)
_DIGEST_LINE = re.compile(r"^(?P<digest>[0-9a-fA-F]{64})(?:\s+(?P<name>.*))?$")


class KeyFileError(ValueError):
    """A keys file is missing, unreadable, malformed or empty; the message names the line."""


def hash_key(key: str) -> str:
    """The SHA-256 digest of ``key`` in hex: what a keys file stores."""
    return hashlib.sha256(key.encode()).hexdigest()


def mint_key() -> str:
    """A new random key (256 bits, URL-safe)."""
    return KEY_PREFIX + secrets.token_urlsafe(32)


@dataclass(frozen=True)
class KeyRing:
    """The digests of the keys accepted, and the file they came from."""

    digests: tuple[bytes, ...]
    source: str

    def accepts(self, key: str | None) -> bool:
        """True when ``key`` hashes to one of the digests; compares against every digest."""
        if not key:
            return False
        presented = hashlib.sha256(key.encode()).digest()
        found = False
        for digest in self.digests:
            found |= hmac.compare_digest(presented, digest)
        return found


def load_key_ring(path: Path) -> KeyRing:
    """Read a keys file; raise KeyFileError naming the file (and line) when it is unusable."""
    try:
        text = path.read_text()
    except OSError as exc:
        raise KeyFileError(f"cannot read the keys file {path}: {exc.strerror or exc}") from exc
    digests: list[bytes] = []
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        match = _DIGEST_LINE.match(line)
        if match is None:
            raise KeyFileError(
                f"{path}:{number}: expected a SHA-256 digest (64 hex digits) and an optional "
                "name; store digests, never keys (see `artpulse api-key`)"
            )
        digests.append(bytes.fromhex(match["digest"]))
    if not digests:
        raise KeyFileError(f"{path} holds no key digests; every request would be refused")
    return KeyRing(tuple(digests), str(path))


def presented_key(headers: Mapping[str, str] | Iterable[tuple[str, str]]) -> str | None:
    """The key a request presents in lower-case ``headers``/metadata, or None."""
    pairs = headers.items() if isinstance(headers, Mapping) else headers
    for name, value in pairs:
        if name == API_KEY_HEADER and value.strip():
            return value.strip()
        if name == AUTHORIZATION:
            match = _BEARER.match(value)
            if match:
                return match["key"]
    return None
