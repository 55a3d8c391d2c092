"""The model repository of an ArtPulse settings folder: each ``model-settings.json`` names its
model.

MLServer's own repository expects one folder per model, named after it, and warns on every
start and reload when the names differ. ArtPulse's settings folder (``runtime/``) holds the
runtime's packages beside the settings, so the name comes from the file (a file without one
is named after its folder, as in MLServer) and nothing warns. ``settings.json`` selects this
class (``model_repository_implementation``) for the guarded server and plain ``mlserver
start`` alike.
"""

from __future__ import annotations

import builtins
from pathlib import Path

from mlserver.errors import ModelNotFound
from mlserver.repository.repository import DEFAULT_MODEL_SETTINGS_FILENAME, ModelRepository
from mlserver.settings import ModelParameters, ModelSettings


class ModelSettingsError(ValueError):
    """A ``model-settings.json`` that cannot be read; the message names the file."""


class NamedModelRepository(ModelRepository):
    """Every ``model-settings.json`` under ``root``, named by its ``name`` field."""

    def __init__(self, root: str) -> None:
        """A repository of the settings files under the folder ``root``."""
        self._root = Path(root)

    async def list(self) -> list[ModelSettings]:
        """The settings of every model in the folder, in path order."""
        models = []
        for path in sorted(self._root.resolve().rglob(DEFAULT_MODEL_SETTINGS_FILENAME)):
            try:
                settings = ModelSettings.parse_file(str(path))
            except (OSError, ValueError) as exc:
                raise ModelSettingsError(f"{path}: {exc}") from exc
            settings.name = settings.name or path.parent.name
            settings.parameters = settings.parameters or ModelParameters()
            settings.parameters.uri = settings.parameters.uri or str(path.parent)
            models.append(settings)
        return models

    async def find(self, name: str) -> builtins.list[ModelSettings]:
        """The settings of the model ``name``; ``ModelNotFound`` when there is none."""
        found = [settings for settings in await self.list() if settings.name == name]
        if not found:
            raise ModelNotFound(name)
        return found
