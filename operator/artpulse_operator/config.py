"""The operator's own settings (environment, ``ARTPULSE_`` prefix), built at start-up."""

from __future__ import annotations

from pydantic import Field, SecretStr

from artpulse_contract.backoff import Backoff
from artpulse_contract.registry.connection import DEFAULT_REQUEST_TIMEOUT_SECONDS
from artpulse_contract.settings import ArtPulseSettings


class OperatorSettings(ArtPulseSettings):
    """Registry defaults and retry limits of the operator.

    ``tracking_uri`` (``MLFLOW_TRACKING_URI``) is the registry for resources that name none.
    """

    operator_registry_timeout_seconds: int = Field(default=DEFAULT_REQUEST_TIMEOUT_SECONDS, ge=1)
    """How long one registry request may take before the registry counts as unreachable."""

    operator_max_backoff_seconds: int = Field(default=300, ge=1)
    """Upper bound of the wait between retries while the registry is unreachable."""

    operator_webhook_port: int = Field(default=0, ge=0, le=65535)
    """Port of the MLflow registry webhook receiver (``POST /webhook``); 0 turns it off."""

    operator_webhook_host: str = "0.0.0.0"
    """Address the webhook receiver listens on."""

    operator_webhook_secret: SecretStr | None = None
    """The webhook's HMAC secret (as given to MLflow); required when the receiver is on."""

    def retry_delay(self, failures: int, poll_seconds: int) -> float:
        """Wait before retry number ``failures`` (1, 2, ...) of an unreachable registry: from
        the poll interval, doubling up to ``operator_max_backoff_seconds``, with jitter."""
        cap = self.operator_max_backoff_seconds
        return Backoff(min(poll_seconds, cap), cap).delay(failures)
