"""The webhook receiver: MLflow's HMAC signature checked, alias events wake their followers."""

from __future__ import annotations

import asyncio
import json
import time
import urllib.error
import urllib.request

import pytest

from artpulse_operator.webhook import (
    DELIVERY_HEADER,
    SIGNATURE_HEADER,
    TIMESTAMP_HEADER,
    WEBHOOK_PATH,
    Wakeups,
    WebhookRejected,
    alias_target,
    sign,
    start_server,
    verify,
)
from support.environment import free_port

SECRET = "s3cret"
BODY = json.dumps(
    {"entity": "model_version_alias", "action": "created", "data": {"name": "m", "alias": "a"}}
).encode()


def signed(body: bytes = BODY, secret: str = SECRET, age: int = 0) -> dict[str, str]:
    """Headers as MLflow sends them for ``body``, ``age`` seconds ago."""
    stamp = str(int(time.time()) - age)
    return {
        DELIVERY_HEADER: "d-1",
        TIMESTAMP_HEADER: stamp,
        SIGNATURE_HEADER: sign(secret, "d-1", stamp, body),
    }


def test_a_signed_delivery_is_accepted_and_names_its_alias() -> None:
    payload = verify(SECRET, signed(), BODY, time.time())
    assert alias_target(payload) == ("m", "a")
    assert alias_target({"entity": "model_version", "data": {"name": "m"}}) is None


@pytest.mark.parametrize(
    ("headers", "match"),
    [
        ({}, "missing header"),
        (signed(secret="other"), "does not match"),
        (signed(age=3600), "not within 300 s"),
        ({**signed(), TIMESTAMP_HEADER: "soon"}, "'soon'"),
    ],
)
def test_unsigned_forged_or_stale_deliveries_are_refused(
    headers: dict[str, str], match: str
) -> None:
    with pytest.raises(WebhookRejected, match=match) as caught:
        verify(SECRET, headers, BODY, time.time())
    assert caught.value.status == 401


def test_a_signed_body_that_is_not_json_is_a_bad_request() -> None:
    with pytest.raises(WebhookRejected, match="not JSON") as caught:
        verify(SECRET, signed(b"{nope"), b"{nope", time.time())
    assert caught.value.status == 400


def post(url: str, body: bytes, headers: dict[str, str]) -> tuple[int, dict[str, object]]:
    request = urllib.request.Request(url, data=body, headers=headers, method="POST")
    try:
        with urllib.request.urlopen(request, timeout=5) as answer:
            return answer.status, json.loads(answer.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())


def test_the_receiver_wakes_only_the_followers_of_a_verified_alias_event() -> None:
    async def scenario() -> None:
        wakeups = Wakeups()
        follower, other = asyncio.Event(), asyncio.Event()
        wakeups.follow("uid-1", "m", "a", follower)
        wakeups.follow("uid-2", "m", "champion", other)
        port = free_port()
        runner = await start_server("127.0.0.1", port, SECRET, wakeups)
        url = f"http://127.0.0.1:{port}{WEBHOOK_PATH}"
        try:
            forged = await asyncio.to_thread(post, url, BODY, signed(secret="x"))
            assert forged[0] == 401 and not follower.is_set()
            accepted = await asyncio.to_thread(post, url, BODY, signed())
            assert accepted == (200, {"woken": 1})
            assert follower.is_set() and not other.is_set()
            wakeups.forget("uid-1")
            assert wakeups.wake("m", "a") == 0
        finally:
            await runner.cleanup()

    asyncio.run(scenario())
