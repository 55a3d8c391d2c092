"""The operator's own settings (environment, ``ARTPULSE_`` prefix), built at start-up."""

from __future__ import annotations

from pydantic import SecretStr

from artpulse_runtime.settings import ArtPulseSettings


class OperatorSettings(ArtPulseSettings):
    """Registry defaults and retry limits of the operator.

    ``tracking_uri`` (``MLFLOW_TRACKING_URI``) is the registry for resources that name none.
    """

    operator_registry_timeout_seconds: int = 10
    """How long one registry request may take before the registry counts as unreachable."""

    operator_max_backoff_seconds: int = 300
    """Upper bound of the wait between retries while the registry is unreachable."""

    operator_webhook_port: int = 0
    """Port of the MLflow registry webhook receiver (``POST /webhook``); 0 turns it off."""

    operator_webhook_host: str = "0.0.0.0"
    """Address the webhook receiver listens on."""

    operator_webhook_secret: SecretStr | None = None
    """The webhook's HMAC secret (as given to MLflow); required when the receiver is on."""


def backoff_seconds(failures: int, poll_seconds: int, cap: int) -> float:
    """Wait before retry number ``failures`` (1, 2, ...): the poll interval, doubling, capped."""
    exponent = min(max(failures - 1, 0), 16)
    return float(max(1, min(cap, poll_seconds * 2**exponent)))
