"""Configuration shared by every ArtPulse command: where the state, registry and events live.

Built in ``main()`` or at model load, never at import. Environment variables use the
``ARTPULSE_`` prefix; the standard ``MLFLOW_TRACKING_URI`` keeps its own name.
"""

from __future__ import annotations

from pathlib import Path

from pydantic import AliasChoices, Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from artpulse_contract.constants import ALIAS_CHAMPION, MODEL_NAME
from artpulse_contract.registry.uris import alias_uri


class ArtPulseSettings(BaseSettings):
    """Where ArtPulse keeps its state, and which registry and event store it talks to."""

    model_config = SettingsConfigDict(env_prefix="ARTPULSE_", extra="ignore")

    state_dir: Path = Path(".artpulse")
    """Local state folder: SQLite registry, artifacts, event store and feature cache."""

    tracking_uri: str | None = Field(
        default=None, validation_alias=AliasChoices("MLFLOW_TRACKING_URI")
    )
    """MLflow tracking and registry URI; unset means a SQLite store in the state folder."""

    events_url: str | None = None
    """SQLAlchemy URL of the prediction event store; unset means SQLite in the state folder."""

    model_name: str = MODEL_NAME
    """Registered model name in MLflow."""

    model_uri: str = alias_uri(MODEL_NAME, ALIAS_CHAMPION)
    """The model a server loads: ``models:/<name>/<N>`` (pinned) or ``models:/<name>@<alias>``."""

    @property
    def resolved_tracking_uri(self) -> str:
        """The tracking URI in force, with the embedded SQLite default filled in."""
        if self.tracking_uri:
            return self.tracking_uri
        return f"sqlite:///{self.state_dir.resolve() / 'mlflow.db'}"

    @property
    def uses_embedded_store(self) -> bool:
        """True when the registry is the embedded SQLite store, not a server."""
        return not self.tracking_uri

    @property
    def artifacts_dir(self) -> Path:
        """Folder for MLflow artifacts when the embedded store is in use."""
        return self.state_dir.resolve() / "artifacts"

    @property
    def resolved_events_url(self) -> str:
        """The event store URL in force, with the embedded SQLite default filled in."""
        if self.events_url:
            return self.events_url
        return f"sqlite:///{self.state_dir.resolve() / 'events.db'}"

    @property
    def feature_cache_dir(self) -> Path:
        """Folder of the feature cache (created on first use): features by image content."""
        return self.ensure_state_dir() / "feature-cache"

    def ensure_state_dir(self) -> Path:
        """Create the state folder if needed and return its absolute path."""
        path = self.state_dir.resolve()
        path.mkdir(parents=True, exist_ok=True)
        return path
