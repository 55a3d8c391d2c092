"""The kopf handlers: thin wrappers that validate the spec and run one loop per resource.

``follow_alias`` (a daemon) polls the registry at the resource's ``pollIntervalSeconds`` and
runs ``cycle.run_cycle`` in a worker thread; a spec edit wakes it at once. While the registry
is unreachable it raises ``kopf.TemporaryError`` with a growing delay, so kopf retries it.
A verified MLflow alias webhook (``webhook.py``, optional) wakes the loops that follow it.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import kopf
from aiohttp import web
from kubernetes.client.exceptions import ApiException

from artpulse_contract.registry.connection import limit_http_waits
from artpulse_operator import constants as c
from artpulse_operator.config import OperatorSettings
from artpulse_operator.cycle import Clients, connect, crd_served, run_cycle
from artpulse_operator.spec import InvalidSpec, parse_spec
from artpulse_operator.webhook import WEBHOOK_PATH, Wakeups, start_server

CRD_RETRY_SECONDS = 5.0


@kopf.on.startup()
async def configure(
    settings: kopf.OperatorSettings, memo: kopf.Memo, logger: kopf.Logger, **_: Any
) -> None:
    """Keep kopf's bookkeeping under our prefix, post only our own Events, build clients,
    and start the MLflow webhook receiver when ``ARTPULSE_OPERATOR_WEBHOOK_PORT`` is set.

    Cluster scanning (watching CRDs and Namespaces cluster-wide) is off, so the namespaced
    Role of ``manifests/rbac.yaml`` is enough; instead start-up waits until the CRD is served.
    """
    settings.posting.level = logging.CRITICAL
    settings.scanning.disabled = True
    settings.persistence.finalizer = c.FINALIZER
    settings.persistence.progress_storage = kopf.AnnotationsProgressStorage(prefix=c.KOPF_PREFIX)
    settings.persistence.diffbase_storage = kopf.AnnotationsDiffBaseStorage(
        prefix=c.KOPF_PREFIX, key="last-handled-configuration"
    )
    operator_settings = OperatorSettings()
    limit_http_waits(operator_settings.operator_registry_timeout_seconds)
    clients = connect(operator_settings)
    if not await asyncio.to_thread(crd_served, clients):
        raise kopf.TemporaryError(
            f"the API server does not serve {c.PLURAL}.{c.GROUP}/{c.VERSION} yet: "
            "apply manifests/crd.yaml",
            delay=CRD_RETRY_SECONDS,
        )
    memo.clients = clients
    memo.wakeups = Wakeups()
    if operator_settings.operator_webhook_port:
        memo.webhook = await _start_webhook(operator_settings, memo.wakeups, logger)


async def _start_webhook(
    settings: OperatorSettings, wakeups: Wakeups, logger: kopf.Logger
) -> web.AppRunner:
    """Start the MLflow webhook receiver; a port without a secret is a permanent error."""
    if settings.operator_webhook_secret is None:
        raise kopf.PermanentError(
            "ARTPULSE_OPERATOR_WEBHOOK_PORT is set but ARTPULSE_OPERATOR_WEBHOOK_SECRET is not: "
            "unsigned webhooks are refused, so give the secret configured in MLflow"
        )
    port = settings.operator_webhook_port
    runner = await start_server(
        settings.operator_webhook_host,
        port,
        settings.operator_webhook_secret.get_secret_value(),
        wakeups,
    )
    logger.info(f"MLflow webhook receiver on port {port}, path {WEBHOOK_PATH}")
    return runner


@kopf.on.cleanup()
async def stop_webhook(memo: kopf.Memo, **_: Any) -> None:
    """Stop the webhook receiver, if it runs."""
    if "webhook" in memo:
        await memo.webhook.cleanup()


def _wakeup(memo: kopf.Memo) -> asyncio.Event:
    if "wakeup" not in memo:
        memo["wakeup"] = asyncio.Event()
    event: asyncio.Event = memo["wakeup"]
    return event


@kopf.on.resume(c.GROUP, c.VERSION, c.PLURAL)
@kopf.on.create(c.GROUP, c.VERSION, c.PLURAL)
@kopf.on.update(c.GROUP, c.VERSION, c.PLURAL, field="spec")
async def check_spec(spec: kopf.Spec, memo: kopf.Memo, **_: Any) -> None:
    """Reject an invalid spec for good; otherwise make the resource's loop act now."""
    try:
        parse_spec(spec)
    except InvalidSpec as error:
        _wakeup(memo).set()  # the loop reports it in the status
        raise kopf.PermanentError(str(error)) from error
    _wakeup(memo).set()


async def _pause(memo: kopf.Memo, stopped: kopf.DaemonStopped, seconds: float) -> None:
    wakeup = _wakeup(memo)
    waiters = {asyncio.ensure_future(wakeup.wait()), asyncio.ensure_future(stopped.wait())}
    _, pending = await asyncio.wait(waiters, timeout=seconds, return_when=asyncio.FIRST_COMPLETED)
    for waiter in pending:
        waiter.cancel()
    wakeup.clear()


@kopf.daemon(c.GROUP, c.VERSION, c.PLURAL, cancellation_timeout=10.0)
async def follow_alias(
    name: str,
    namespace: str | None,
    uid: str,
    body: kopf.Body,
    memo: Any,
    stopped: kopf.DaemonStopped,
    **_: Any,
) -> None:
    """Reconcile the resource at its poll interval until it is deleted or the operator stops."""
    clients: Clients = memo.clients
    wakeups: Wakeups = memo.wakeups
    target_namespace = str(namespace)  # the CRD is namespaced
    try:
        await _follow(clients, wakeups, target_namespace, name, uid, body, memo, stopped)
    finally:
        wakeups.forget(uid)


async def _follow(
    clients: Clients,
    wakeups: Wakeups,
    namespace: str,
    name: str,
    uid: str,
    body: kopf.Body,
    memo: Any,
    stopped: kopf.DaemonStopped,
) -> None:
    while not stopped:
        try:
            result = await asyncio.to_thread(run_cycle, clients, namespace, name)
        except ApiException as error:  # e.g. the API server restarting: retry, do not crash
            raise kopf.TemporaryError(
                f"Kubernetes API error {error.status} {error.reason}: {error.body}",
                delay=c.DEFAULT_POLL_SECONDS,
            ) from error
        if result.follows is not None:
            wakeups.follow(uid, *result.follows, _wakeup(memo))
        for event in result.events:
            kopf.event(body, type=event.type, reason=event.reason, message=event.message)
        if result.gone:
            return
        if result.registry_error is not None:
            memo["failures"] = memo.get("failures", 0) + 1
            delay = clients.settings.retry_delay(memo["failures"], result.poll_seconds)
            raise kopf.TemporaryError(result.registry_error, delay=delay)
        memo["failures"] = 0
        await _pause(memo, stopped, result.poll_seconds)
