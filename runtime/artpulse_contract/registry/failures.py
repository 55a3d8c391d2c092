"""What went wrong when talking to the registry: one classification for every caller.

Two kinds matter to callers: the thing asked for does not exist (``RegistryEntryMissing``: a
registered model, version or alias; report it, retrying faster does not help) and the registry
could not answer (``RegistryUnavailable``: connection refused, DNS, timeouts, a server error;
retry with backoff).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import requests
from mlflow.exceptions import MlflowException

from artpulse_contract.network import causes, connection_failure

NOT_FOUND_CODES = frozenset({"RESOURCE_DOES_NOT_EXIST", "NOT_FOUND"})
"""MLflow error codes of a missing registered model or version."""

INVALID_PARAMETER = "INVALID_PARAMETER_VALUE"
"""MLflow's stores report a missing alias with this code (``... alias X not found``)."""

_CONNECTION_FAILURES = (
    ConnectionError,
    TimeoutError,
    requests.exceptions.ConnectionError,
    requests.exceptions.Timeout,
)


class RegistryError(RuntimeError):
    """The registry did not do what was asked; the message names the registry and the action."""


class RegistryUnavailable(RegistryError):
    """The registry could not be reached or failed to answer."""


class RegistryEntryMissing(RegistryError, LookupError):
    """The registered model, version or alias asked for does not exist."""


def is_not_found(error: BaseException) -> bool:
    """True when ``error`` is MLflow saying a model, version or alias does not exist."""
    if not isinstance(error, MlflowException):
        return False
    if error.error_code in NOT_FOUND_CODES:
        return True
    return error.error_code == INVALID_PARAMETER and "not found" in error.message.lower()


def is_unreachable(error: BaseException) -> bool:
    """True when ``error`` (or what caused it) is a failure to reach the registry at all.

    An ``MlflowException`` with no connection failure behind it is the registry answering
    with an error; anything else (network, SQL and file errors) means it could not answer.
    """
    if any(isinstance(cause, _CONNECTION_FAILURES) for cause in causes(error)):
        return True
    return not isinstance(error, MlflowException)


def _detail(error: BaseException) -> str:
    """One line: MLflow's message, the connection failure, or the root cause."""
    if isinstance(error, MlflowException) and not is_unreachable(error):
        return error.message.splitlines()[0] if error.message else type(error).__name__
    failure = connection_failure(error)
    if failure is not None:
        return failure
    root = list(causes(error))[-1]
    text = str(root).splitlines()[0] if str(root) else ""
    return f"{type(root).__name__}: {text}" if text else type(root).__name__


def classify(error: BaseException, *, uri: str, action: str) -> RegistryError:
    """The ``RegistryError`` that says what ``error`` means while trying to ``action``."""
    if is_not_found(error):
        return RegistryEntryMissing(f"{action}: {_detail(error)}")
    if is_unreachable(error):
        return RegistryUnavailable(
            f"cannot reach the registry at {uri}: {_detail(error)} (trying to {action})"
        )
    return RegistryUnavailable(f"registry at {uri} failed to {action}: {_detail(error)}")


@contextmanager
def registry_errors(uri: str, action: str) -> Iterator[None]:
    """Turn any failure inside the block into the ``RegistryError`` that classifies it."""
    try:
        yield
    except RegistryError:
        raise
    except Exception as error:  # network, SQL, file and MLflow errors all get classified
        raise classify(error, uri=uri, action=action) from error
