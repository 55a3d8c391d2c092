"""One poll of one ArtPulseModel: read it, ask the registry, look at the Deployment, act.

``run_cycle`` does the I/O around the pure decisions of ``reconcile.decide`` and writes the
status; it returns the Events to post and whether the registry was unreachable.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from kubernetes import client as k8s
from kubernetes import config as k8s_config
from kubernetes.client.exceptions import ApiException

from artpulse_contract.constants import ALIAS_CHALLENGER
from artpulse_contract.events import EventStore
from artpulse_contract.registry.connection import client_for
from artpulse_contract.registry.failures import RegistryEntryMissing, RegistryError
from artpulse_contract.registry.lookups import aliases_of
from artpulse_operator import constants as c
from artpulse_operator.canary_context import CanaryContext, CanaryOutcome, RegistryState
from artpulse_operator.canary_cycle import run_canary
from artpulse_operator.config import OperatorSettings
from artpulse_operator.deployment import (
    ContainerMissing,
    DeploymentMissing,
    DeploymentView,
    patch_deployment,
    read_deployment,
)
from artpulse_operator.promotion import describe as describe_promotion
from artpulse_operator.promotion import promote_spec_version
from artpulse_operator.reconcile import Event, Memory, decide
from artpulse_operator.spec import InvalidSpec, ModelSpec, parse_spec
from artpulse_operator.status import flipped, now_iso, set_condition
from artpulse_operator.step_windows import StepWindows

SETTLED_PHASES = (c.PHASE_SERVING, c.PHASE_ROLLING_OUT)
"""Phases of the serving Deployment (with no rollout of the operator in flight) in which a
canary's phase is shown instead: serving, or scaling as its owner asked."""


@dataclass(frozen=True)
class Clients:
    """The API clients, event store and settings one operator process shares between
    resources."""

    apps: k8s.AppsV1Api
    custom: k8s.CustomObjectsApi
    settings: OperatorSettings
    windows: StepWindows
    """Canary steps' events, from the store at ``ARTPULSE_EVENTS_URL``."""


def connect(settings: OperatorSettings) -> Clients:
    """API clients from the in-cluster service account, else from the kubeconfig."""
    try:
        k8s_config.load_incluster_config()
    except k8s_config.ConfigException:
        k8s_config.load_kube_config()
    windows = StepWindows(EventStore(settings.resolved_events_url))  # connects on first use
    return Clients(k8s.AppsV1Api(), k8s.CustomObjectsApi(), settings, windows)


def crd_served(clients: Clients) -> bool:
    """True when the API server serves the ArtPulseModel kind (discovery, no RBAC needed)."""
    try:
        found = clients.custom.get_api_resources(c.GROUP, c.VERSION)
    except ApiException as error:
        if error.status == 404:
            return False
        raise
    return any(resource.name == c.PLURAL for resource in found.resources or [])


@dataclass
class CycleResult:
    """What the caller does next: post ``events``, then wait ``poll_seconds`` or back off."""

    poll_seconds: int
    events: list[Event] = field(default_factory=list)
    registry_error: str | None = None
    gone: bool = False
    follows: tuple[str, str] | None = None
    """(model, alias) the resource follows, for webhook wake-ups; None if the spec is invalid."""


class _StatusWriter:
    """Builds the status patch of one cycle from the resource's previous status."""

    def __init__(self, clients: Clients, body: Mapping[str, Any]) -> None:
        self.clients = clients
        self.body = body
        self.meta = body.get("metadata") or {}
        self.before: Mapping[str, Any] = body.get("status") or {}
        self.conditions: list[dict[str, Any]] = [
            dict(x) for x in self.before.get("conditions") or []
        ]
        self.now = now_iso()
        self.events: list[Event] = []
        self.follows: tuple[str, str] | None = None

    def condition(self, kind: str, ok: bool, reason: str, message: str) -> None:
        self.conditions = set_condition(self.conditions, kind, ok, reason, message, self.now)

    def report_change(self, event: Event, phase: str) -> None:
        """Post ``event`` only when the phase or message differs from the last poll's."""
        if self.before.get("phase") != phase or self.before.get("message") != event.message:
            self.events.append(event)

    def write(self, phase: str | None, message: str, fields: Mapping[str, Any]) -> None:
        status: dict[str, Any] = {
            **fields,
            "message": message,
            "observedGeneration": self.meta.get("generation"),
        }
        if phase is not None:
            status["phase"] = phase
            serving = phase in (c.PHASE_SERVING, c.PHASE_CANARY)
            self.condition(c.COND_READY, serving, phase, message)
        status["conditions"] = self.conditions
        self.clients.custom.patch_namespaced_custom_object_status(
            c.GROUP,
            c.VERSION,
            str(self.meta.get("namespace")),
            c.PLURAL,
            str(self.meta.get("name")),
            {"status": status},
        )


def _registry_step(writer: _StatusWriter, spec: ModelSpec, uri: str) -> RegistryState:
    """Promote ``spec.version`` if set (unless a canary decides), and read the aliases."""
    client = client_for(uri)
    if spec.version is not None and not spec.rollout.is_canary:
        move = promote_spec_version(client, spec, spec.version, writer.body)
        if move is not None:
            message = describe_promotion(spec, spec.version, move)
            writer.events.append(Event("Normal", c.REASON_PROMOTED, message))
        return RegistryState(client, spec.version, None)
    aliases = aliases_of(client, spec.model_name)
    return RegistryState(client, aliases.get(spec.alias), aliases.get(ALIAS_CHALLENGER))


def _read_resource(clients: Clients, namespace: str, name: str) -> dict[str, Any] | None:
    """The resource as a dict, or None when it is gone."""
    try:
        found = clients.custom.get_namespaced_custom_object(
            c.GROUP, c.VERSION, namespace, c.PLURAL, name
        )
    except ApiException as error:
        if error.status == 404:
            return None
        raise
    return dict(found)  # type: ignore[call-overload]


def _stop_on_error(
    writer: _StatusWriter, reason: str, error: Exception, poll: int, **fields: Any
) -> CycleResult:
    """Report ``error`` as phase Error (an Event only when it changed) and end the cycle."""
    writer.report_change(Event("Warning", reason, str(error)), c.PHASE_ERROR)
    writer.write(c.PHASE_ERROR, str(error), fields)
    return CycleResult(poll, writer.events, follows=writer.follows)


def _registry_down(writer: _StatusWriter, spec: ModelSpec, error: RegistryError) -> CycleResult:
    """Flip ``RegistryReachable`` to False (an Event on the flip) and leave the Deployment."""
    before = list(writer.conditions)
    writer.condition(c.COND_REGISTRY, False, "Unreachable", str(error))
    if flipped(before, writer.conditions, c.COND_REGISTRY):
        writer.events.append(Event("Warning", c.REASON_REGISTRY_DOWN, str(error)))
    writer.write(None, str(error), {})
    return CycleResult(
        spec.poll_seconds, writer.events, registry_error=str(error), follows=writer.follows
    )


def _registry_up(writer: _StatusWriter, spec: ModelSpec, uri: str, desired: str | None) -> None:
    """Set ``RegistryReachable`` to True (an Event when it comes back)."""
    before = list(writer.conditions)
    message = f"alias {spec.alias!r} -> version {desired}"
    writer.condition(c.COND_REGISTRY, True, "Reachable", message)
    if flipped(before, writer.conditions, c.COND_REGISTRY) and before:
        writer.events.append(Event("Normal", c.REASON_REGISTRY_BACK, f"registry {uri} answers"))


def _canary(
    clients: Clients,
    writer: _StatusWriter,
    spec: ModelSpec,
    registry: RegistryState,
    view: DeploymentView,
    memory: Memory,
) -> CanaryOutcome | None:
    """The canary's poll, when the resource runs canaries or one is still in flight."""
    if not spec.rollout.is_canary and not writer.before.get("canary"):
        return None
    served = view.served_version(spec.model_name)
    context = CanaryContext(
        apps=clients.apps,
        windows=clients.windows,
        body=writer.body,
        registry=registry,
        serving=view,
        serving_settled=memory.rollout is None and served == registry.desired,
        generation=int(writer.meta.get("generation") or 0),
        now=now_iso(precise=True),
        previous_message=str(writer.before.get("message") or ""),
    )
    return run_canary(spec, context, writer.before)


def _act(
    clients: Clients,
    writer: _StatusWriter,
    spec: ModelSpec,
    registry: RegistryState,
    view: DeploymentView,
) -> CycleResult:
    """Run the canary's poll, decide on the Deployment, patch it if needed, write the status."""
    memory = Memory.from_status(writer.before)
    generation = int(writer.meta.get("generation") or 0)
    canary = _canary(clients, writer, spec, registry, view, memory)
    desired = registry.desired if canary is None else canary.desired
    decision = decide(spec, memory, generation, desired, view, writer.now)
    fields: dict[str, Any] = {"aliasVersion": desired, **decision.memory.to_status()}
    if decision.patch is not None:
        namespace = str(writer.meta.get("namespace"))
        view = patch_deployment(
            clients.apps, namespace, spec.deployment, decision.patch, spec.container
        )
        fields["lastRolloutTime"] = writer.now
    fields["servingVersion"] = view.served_version(spec.model_name)
    fields["modelUri"] = view.model_uri
    writer.events.extend(decision.events)
    phase, message = decision.phase, decision.message
    if decision.phase == writer.before.get("phase") == c.PHASE_ROLLED_BACK:
        message = str(writer.before.get("message") or message)  # keep the rollback's reason
    if canary is not None:
        writer.events.extend(canary.events)
        fields.update(canary.status)
        settled = decision.patch is None and decision.memory.rollout is None
        if canary.phase is not None and settled and phase in SETTLED_PHASES:
            phase, message = canary.phase, canary.message  # the canary speaks while it runs
    writer.write(phase, message, fields)
    poll = spec.poll_seconds
    if decision.memory.rollout is not None:
        poll = min(poll, c.ROLLOUT_CHECK_SECONDS)  # settle (or roll back) without waiting a poll
    elif canary is not None and canary.in_flight:
        poll = canary.next_check(poll)
    return CycleResult(poll, writer.events, follows=writer.follows)


def _paused_message(status: Mapping[str, Any]) -> str:
    canary = status.get("canary")
    if not canary:
        return "paused: the Deployment is left as it is"
    return (
        f"paused: the canary of version {canary.get('version')} holds at step "
        f"{canary.get('step')}/{canary.get('steps')} ({canary.get('share')}% of the traffic); "
        "the Deployments are left as they are"
    )


def run_cycle(clients: Clients, namespace: str, name: str) -> CycleResult:
    """Reconcile the resource ``namespace/name`` once and write its status."""
    body = _read_resource(clients, namespace, name)
    if body is None:
        return CycleResult(poll_seconds=c.DEFAULT_POLL_SECONDS, gone=True)
    writer = _StatusWriter(clients, body)
    try:
        spec = parse_spec(body.get("spec") or {})
    except InvalidSpec as error:
        return _stop_on_error(writer, c.REASON_INVALID_SPEC, error, c.DEFAULT_POLL_SECONDS)
    writer.follows = (spec.model_name, spec.alias)
    if spec.paused:
        held = {"canary": {"updatedAt": writer.now}} if writer.before.get("canary") else {}
        writer.write(c.PHASE_PAUSED, _paused_message(writer.before), held)
        return CycleResult(spec.poll_seconds, writer.events, follows=writer.follows)
    uri = spec.tracking_uri or clients.settings.resolved_tracking_uri
    try:
        registry = _registry_step(writer, spec, uri)
    except RegistryEntryMissing as error:
        writer.condition(c.COND_REGISTRY, True, "Reachable", f"registry {uri} answers")
        return _stop_on_error(writer, c.REASON_MODEL_MISSING, error, spec.poll_seconds)
    except RegistryError as error:  # unreachable, failing, or an alias move undone
        return _registry_down(writer, spec, error)
    desired = registry.desired
    _registry_up(writer, spec, uri, desired)
    try:
        view = read_deployment(clients.apps, namespace, spec.deployment, spec.container)
    except (DeploymentMissing, ContainerMissing) as error:
        reason = (
            c.REASON_DEPLOYMENT_MISSING
            if isinstance(error, DeploymentMissing)
            else c.REASON_CONTAINER_MISSING
        )
        writer.condition(c.COND_DEPLOYMENT, False, reason, str(error))
        return _stop_on_error(writer, reason, error, spec.poll_seconds, aliasVersion=desired)
    writer.condition(c.COND_DEPLOYMENT, True, "Found", f"Deployment {spec.deployment!r}")
    try:
        return _act(clients, writer, spec, registry, view)
    except RegistryEntryMissing as error:  # e.g. the canary's version was deleted
        return _stop_on_error(writer, c.REASON_MODEL_MISSING, error, spec.poll_seconds)
    except RegistryError as error:  # the registry failed while a canary was recorded
        return _registry_down(writer, spec, error)
