"""The webhook receiver against what MLflow itself sends: its signer, its delivery code.

Signatures come from MLflow's own signer (``mlflow.webhooks.delivery``), never from the
receiver's ``sign``, and the receiver is exercised with deliveries built and posted by
MLflow's delivery function: if MLflow's format and the receiver's check ever disagree, these
tests go red.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable

import pytest
from mlflow.entities.webhook import Webhook, WebhookEvent
from mlflow.webhooks import constants as mlflow_webhook
from mlflow.webhooks import delivery

from artpulse_operator.webhook import (
    DELIVERY_HEADER,
    SIGNATURE_HEADER,
    TIMESTAMP_HEADER,
    WEBHOOK_PATH,
    Wakeups,
    WebhookRejected,
    alias_target,
    start_server,
    verify,
)
from support.environment import free_port

SECRET = "s3cret"
BODY = json.dumps(
    {"entity": "model_version_alias", "action": "created", "data": {"name": "m", "alias": "a"}}
).encode()


def mlflow_signed(body: bytes = BODY, secret: str = SECRET, age: int = 0) -> dict[str, str]:
    """Headers for ``body`` as MLflow's signer makes them, dated ``age`` seconds ago."""
    stamp = str(int(time.time()) - age)
    signature = delivery._generate_hmac_signature(secret, "d-1", stamp, body.decode())
    return {DELIVERY_HEADER: "d-1", TIMESTAMP_HEADER: stamp, SIGNATURE_HEADER: signature}


def test_the_receiver_reads_the_headers_mlflow_writes() -> None:
    assert (SIGNATURE_HEADER, TIMESTAMP_HEADER, DELIVERY_HEADER) == (
        mlflow_webhook.WEBHOOK_SIGNATURE_HEADER,
        mlflow_webhook.WEBHOOK_TIMESTAMP_HEADER,
        mlflow_webhook.WEBHOOK_DELIVERY_ID_HEADER,
    )


def test_a_delivery_signed_by_mlflow_is_accepted_and_names_its_alias() -> None:
    payload = verify(SECRET, mlflow_signed(), BODY, time.time())
    assert alias_target(payload) == ("m", "a")
    assert alias_target({"entity": "model_version", "data": {"name": "m"}}) is None


@pytest.mark.parametrize(
    ("headers", "match"),
    [
        # Signed when the test runs, not at collection: a long suite would make them stale.
        (dict, "missing header"),
        (lambda: mlflow_signed(secret="other"), "does not match"),
        (lambda: {**mlflow_signed(), DELIVERY_HEADER: "d-2"}, "does not match"),
        (lambda: mlflow_signed(age=3600), "not within 300 s"),
        (lambda: {**mlflow_signed(), TIMESTAMP_HEADER: "soon"}, "'soon'"),
    ],
    ids=["unsigned", "other-secret", "other-delivery-id", "stale", "bad-timestamp"],
)
def test_unsigned_forged_or_stale_deliveries_are_refused(
    headers: Callable[[], dict[str, str]], match: str
) -> None:
    with pytest.raises(WebhookRejected, match=match) as caught:
        verify(SECRET, headers(), BODY, time.time())
    assert caught.value.status == 401


def test_a_changed_body_breaks_the_signature() -> None:
    tampered = BODY.replace(b'"a"', b'"b"')
    with pytest.raises(WebhookRejected, match="does not match"):
        verify(SECRET, mlflow_signed(), tampered, time.time())


def test_a_signed_body_that_is_not_json_is_a_bad_request() -> None:
    with pytest.raises(WebhookRejected, match="not JSON") as caught:
        verify(SECRET, mlflow_signed(b"{nope"), b"{nope", time.time())
    assert caught.value.status == 400


@pytest.fixture
def local_delivery(monkeypatch: pytest.MonkeyPatch) -> None:
    """Let MLflow's delivery code post to http://127.0.0.1 (it refuses private IPs by default)."""
    monkeypatch.setenv("MLFLOW_WEBHOOK_ALLOW_PRIVATE_IPS", "true")
    monkeypatch.setenv("MLFLOW_WEBHOOK_ALLOWED_SCHEMES", "http")


def mlflow_delivers(url: str, secret: str, model: str, alias: str) -> tuple[int, object]:
    """Post an alias-created event to ``url`` exactly as an MLflow server delivers it."""
    now = int(time.time() * 1000)
    hook = Webhook(
        webhook_id="hook-1",
        name="operator",
        url=url,
        events=[WebhookEvent("model_version_alias", "created")],
        creation_timestamp=now,
        last_updated_timestamp=now,
        secret=secret,
    )
    answer = delivery._send_webhook_request(
        hook,
        {"name": model, "alias": alias, "version": "3"},
        hook.events[0],
        delivery._create_webhook_session(),
    )
    return answer.status_code, answer.json()


@pytest.mark.usefixtures("local_delivery")
def test_the_receiver_wakes_only_the_followers_of_an_mlflow_delivery() -> None:
    async def scenario() -> None:
        wakeups = Wakeups()
        follower, other = asyncio.Event(), asyncio.Event()
        wakeups.follow("uid-1", "m", "a", follower)
        wakeups.follow("uid-2", "m", "champion", other)
        port = free_port()
        runner = await start_server("127.0.0.1", port, SECRET, wakeups)
        url = f"http://127.0.0.1:{port}{WEBHOOK_PATH}"
        try:
            forged = await asyncio.to_thread(mlflow_delivers, url, "wrong", "m", "a")
            assert forged[0] == 401 and not follower.is_set()
            accepted = await asyncio.to_thread(mlflow_delivers, url, SECRET, "m", "a")
            assert accepted == (200, {"woken": 1})
            assert follower.is_set() and not other.is_set()
            wakeups.forget("uid-1")
            assert wakeups.wake("m", "a") == 0
        finally:
            await runner.cleanup()

    asyncio.run(scenario())
