"""Whether a served model is ready, why not, and which registry version it serves, read from
MLServer's model registry (the ``ModelStates`` the guard's policy asks)."""

from __future__ import annotations

from typing import Protocol, runtime_checkable

from mlserver.errors import ModelNotFound
from mlserver.model import MLModel
from mlserver.registry import MultiModelRegistry

from artpulse_runtime.lifecycle import STILL_LOADING

NOT_LOADED = "no instance is loaded (the server is starting, or the model was unloaded)"


@runtime_checkable
class ExplainsReadiness(Protocol):
    """A runtime that can say why it is not ready (``ArtPulseRuntime`` does)."""

    @property
    def not_ready_reason(self) -> str | None:
        """Why the instance is not ready (e.g. the last load error), or None."""


class ServedModelStates:
    """``ModelStates`` over MLServer's model registry."""

    def __init__(self, registry: MultiModelRegistry) -> None:
        """Read the states of the models in ``registry``."""
        self._registry = registry

    async def _instances(self, name: str) -> list[MLModel]:
        try:
            return list(await self._registry.get_models(name))
        except ModelNotFound:
            return []

    async def not_ready_reason(self, name: str) -> str | None:
        """None when a ready instance of ``name`` serves, else why none does."""
        instances = await self._instances(name)
        if any(instance.ready for instance in instances):
            return None
        if not instances:
            return NOT_LOADED
        for instance in instances:
            if isinstance(instance, ExplainsReadiness) and instance.not_ready_reason:
                return instance.not_ready_reason
        return STILL_LOADING

    async def loaded_versions(self, name: str) -> frozenset[str]:
        """The registry versions the ready instances of ``name`` serve, from their metadata."""
        versions: set[str] = set()
        for instance in await self._instances(name):
            if instance.ready:
                versions.update((await instance.metadata()).versions or ())
        return frozenset(versions)
