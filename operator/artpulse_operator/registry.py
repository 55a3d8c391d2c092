"""The operator's view of the MLflow model registry: resolve an alias, move it on promotion.

Every failure to talk to the registry becomes ``RegistryUnavailable`` (retried with backoff);
a model or version that does not exist becomes ``ModelVersionMissing`` (reported, not retried
faster than the poll interval).
"""

from __future__ import annotations

import os
from collections.abc import Callable
from datetime import UTC, datetime
from typing import TypeVar

from mlflow.exceptions import MlflowException
from mlflow.tracking import MlflowClient

from artpulse_operator.constants import PROMOTED_AT_TAG, PROMOTED_BY_TAG

T = TypeVar("T")

_NOT_FOUND_CODES = frozenset({"RESOURCE_DOES_NOT_EXIST", "NOT_FOUND"})


class RegistryUnavailable(RuntimeError):
    """The registry could not be reached or did not answer; the message names the URI."""


class ModelVersionMissing(LookupError):
    """The registered model, or the version asked for, does not exist in the registry."""


def limit_http_waits(timeout_seconds: int) -> None:
    """Make MLflow's REST client give up after ``timeout_seconds`` and not retry by itself.

    The operator retries with its own backoff; MLflow's default (7 retries, 120 s timeout)
    would hold a reconcile for minutes while the registry is down.
    """
    os.environ.setdefault("MLFLOW_HTTP_REQUEST_TIMEOUT", str(timeout_seconds))
    os.environ.setdefault("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")


def _call(uri: str, what: str, action: Callable[[], T]) -> T:
    try:
        return action()
    except MlflowException as error:
        if error.error_code in _NOT_FOUND_CODES:
            raise ModelVersionMissing(f"{what}: {error.message}") from error
        raise RegistryUnavailable(f"registry {uri} failed to {what}: {error.message}") from error
    except Exception as error:  # network, SQL and file errors all mean "unreachable"
        raise RegistryUnavailable(
            f"registry {uri} failed to {what}: {type(error).__name__}: {error}"
        ) from error


class Registry:
    """A registry client bound to one tracking URI, with errors mapped to this module's types."""

    def __init__(self, uri: str) -> None:
        self.uri = uri
        self._client = _call(uri, "open", lambda: MlflowClient(tracking_uri=uri, registry_uri=uri))

    def alias_version(self, model_name: str, alias: str) -> str | None:
        """The version ``alias`` of ``model_name`` points at, or None when the alias is unset.

        Raises ``ModelVersionMissing`` when the model is not registered.
        """
        model = _call(
            self.uri,
            f"read registered model {model_name!r}",
            lambda: self._client.get_registered_model(model_name),
        )
        version = dict(model.aliases or {}).get(alias)
        return None if version is None else str(version)

    def _tag(self, model_name: str, version: str, key: str, value: str) -> None:
        _call(
            self.uri,
            f"tag version {version} with {key}",
            lambda: self._client.set_model_version_tag(model_name, version, key, value),
        )

    def promote(self, model_name: str, alias: str, version: str, by: str) -> bool:
        """Point ``alias`` at ``version``, tagging the version with who promoted it and when.

        Returns False (and changes nothing) when the alias already points there. Raises
        ``ModelVersionMissing`` when the version does not exist.
        """
        if self.alias_version(model_name, alias) == version:
            return False
        client = self._client
        _call(
            self.uri,
            f"read version {version} of {model_name!r}",
            lambda: client.get_model_version(model_name, version),
        )
        now = datetime.now(UTC).isoformat(timespec="seconds")
        self._tag(model_name, version, PROMOTED_BY_TAG, by)
        self._tag(model_name, version, PROMOTED_AT_TAG, now)
        _call(
            self.uri,
            f"set alias {alias!r} to version {version}",
            lambda: client.set_registered_model_alias(model_name, alias, version),
        )
        return True
