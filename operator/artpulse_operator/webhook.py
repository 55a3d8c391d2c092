"""MLflow registry webhooks: a faster trigger than polling (polling stays the fallback).

MLflow (3.3+, SQL backends) POSTs ``model_version_alias.created``/``deleted`` events signed
with HMAC-SHA256: header ``X-MLflow-Signature: v1,<base64>`` over
``<delivery id>.<timestamp>.<body>``. A verified alias event wakes the loops of every
resource that follows that model and alias; anything unsigned, badly signed or stale is
refused with 401 and wakes nothing.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

SIGNATURE_HEADER = "X-MLflow-Signature"
TIMESTAMP_HEADER = "X-MLflow-Timestamp"
DELIVERY_HEADER = "X-MLflow-Delivery-Id"
SIGNATURE_VERSION = "v1"
MAX_AGE_SECONDS = 300
"""Deliveries whose timestamp is further than this from now are refused (replays)."""
ALIAS_ENTITY = "model_version_alias"
WEBHOOK_PATH = "/webhook"


class WebhookRejected(ValueError):
    """A delivery that is refused; ``status`` is the HTTP status to answer."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


def sign(secret: str, delivery_id: str, timestamp: str, body: bytes) -> str:
    """The ``X-MLflow-Signature`` value MLflow sends for this delivery."""
    content = delivery_id.encode() + b"." + timestamp.encode() + b"." + body
    digest = hmac.new(secret.encode(), content, hashlib.sha256).digest()
    return f"{SIGNATURE_VERSION},{base64.b64encode(digest).decode()}"


def verify(secret: str, headers: Mapping[str, str], body: bytes, now: float) -> dict[str, Any]:
    """Check a delivery's signature and age and return its JSON payload.

    Raises ``WebhookRejected`` (401 for signature or age, 400 for a body that is not JSON).
    """
    missing = [
        h for h in (SIGNATURE_HEADER, TIMESTAMP_HEADER, DELIVERY_HEADER) if not headers.get(h)
    ]
    if missing:
        raise WebhookRejected(401, f"unsigned delivery: missing header(s) {', '.join(missing)}")
    timestamp = headers[TIMESTAMP_HEADER]
    if not timestamp.isdigit() or abs(now - int(timestamp)) > MAX_AGE_SECONDS:
        raise WebhookRejected(
            401, f"{TIMESTAMP_HEADER} {timestamp!r} is not within {MAX_AGE_SECONDS} s of now"
        )
    expected = sign(secret, headers[DELIVERY_HEADER], timestamp, body)
    if not hmac.compare_digest(expected, headers[SIGNATURE_HEADER]):
        raise WebhookRejected(401, f"{SIGNATURE_HEADER} does not match the shared secret")
    try:
        payload = json.loads(body)
    except ValueError as error:
        raise WebhookRejected(400, f"delivery body is not JSON: {error}") from error
    if not isinstance(payload, dict):
        raise WebhookRejected(400, "delivery body is not a JSON object")
    return payload


def alias_target(payload: Mapping[str, Any]) -> tuple[str, str] | None:
    """(model name, alias) of an alias event, None for other events."""
    data = payload.get("data")
    if payload.get("entity") != ALIAS_ENTITY or not isinstance(data, Mapping):
        return None
    name, alias = data.get("name"), data.get("alias")
    return (name, alias) if isinstance(name, str) and isinstance(alias, str) else None


@dataclass
class Wakeups:
    """Which resource loop follows which (model, alias), and the event that wakes it."""

    followers: dict[str, tuple[str, str, asyncio.Event]] = field(default_factory=dict)

    def follow(self, uid: str, model: str, alias: str, wakeup: asyncio.Event) -> None:
        """Record (or update) that resource ``uid`` follows ``model``/``alias``."""
        self.followers[uid] = (model, alias, wakeup)

    def forget(self, uid: str) -> None:
        """Drop resource ``uid`` (its loop ended)."""
        self.followers.pop(uid, None)

    def wake(self, model: str, alias: str) -> int:
        """Wake every loop following ``model``/``alias``; return how many."""
        woken = 0
        for followed_model, followed_alias, wakeup in self.followers.values():
            if (followed_model, followed_alias) == (model, alias):
                wakeup.set()
                woken += 1
        return woken


def make_app(secret: str, wakeups: Wakeups) -> web.Application:
    """The aiohttp application answering ``POST /webhook``."""

    async def receive(request: web.Request) -> web.Response:
        body = await request.read()
        try:
            payload = verify(secret, request.headers, body, time.time())
        except WebhookRejected as error:
            return web.json_response({"error": str(error)}, status=error.status)
        target = alias_target(payload)
        woken = 0 if target is None else wakeups.wake(*target)
        return web.json_response({"woken": woken})

    app = web.Application(client_max_size=64 * 1024)
    app.router.add_post(WEBHOOK_PATH, receive)
    return app


async def start_server(host: str, port: int, secret: str, wakeups: Wakeups) -> web.AppRunner:
    """Start the webhook receiver on ``host:port``; call ``cleanup()`` on the result to stop."""
    runner = web.AppRunner(make_app(secret, wakeups), access_log=None)
    await runner.setup()
    await web.TCPSite(runner, host, port).start()
    return runner
