"""One log format for every line the server writes: time, logger, level, message.

MLServer formats its own loggers (``mlserver.*``) only; uvicorn prints ``INFO:     ...``
without a time, and the event writer's thread (``artpulse_contract.events``) logs through the
root logger, which prints the bare message. ``logging_config`` is a ``dictConfig`` giving all
of them MLServer's format (structured too, with ``use_structured_logging``); the server sets
it as MLServer's ``logging_settings`` unless that is set, so MLServer and both uvicorn
servers apply it. It also drops MLServer's "Loaded model ... successfully." for a model that
is not serving (a load that failed and is retried in the background logs why instead).
"""

from __future__ import annotations

import logging
import re
from typing import Any

from mlserver.logging import ModelLoggerFormatter
from mlserver.settings import Settings

from artpulse_runtime.lifecycle import is_serving

_LOADED = re.compile(r"Loaded model '(?P<name>.+)' successfully\.")


class LoadedWhileNotReady(logging.Filter):
    """Drops MLServer's "Loaded model 'x' successfully." while ``x`` serves nothing."""

    def filter(self, record: logging.LogRecord) -> bool:
        """False for that line about a model that is not serving."""
        if not record.name.startswith("mlserver"):
            return True
        found = _LOADED.fullmatch(record.getMessage())
        return found is None or is_serving(found["name"])


def logging_config(settings: Settings) -> dict[str, Any]:
    """The ``logging.config.dictConfig`` of the server (see the module docstring)."""
    handler = {"class": "logging.StreamHandler", "stream": "ext://sys.stdout"}
    level = "DEBUG" if settings.debug else "INFO"
    own = {"handlers": ["stdout"], "level": level, "propagate": False}
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {"mlserver": {"()": ModelLoggerFormatter, "settings": settings}},
        "filters": {"loaded": {"()": LoadedWhileNotReady}},
        "handlers": {"stdout": {**handler, "formatter": "mlserver", "filters": ["loaded"]}},
        "loggers": {
            "mlserver": own,
            "uvicorn": own,
            "uvicorn.error": {"level": level},
            "uvicorn.access": own,
            "artpulse_contract": {"level": level},
        },
        "root": {"handlers": ["stdout"], "level": "WARNING"},
    }
