"""Logging the chosen estimator as an MLflow pyfunc model and registering it with aliases."""

from __future__ import annotations

from importlib.metadata import version as package_version
from typing import Any

import mlflow
import numpy as np
import pandas as pd
from mlflow import MlflowClient
from mlflow.models import infer_signature
from mlflow.models.model import ModelInfo

from artpulse_contract.classifier import ArtPulseClassifier
from artpulse_contract.constants import ALIAS_CHALLENGER, ALIAS_CHAMPION, FEATURE_NAMES
from artpulse_contract.registry.lookups import version_for_alias

MODEL_ARTIFACT_NAME = "model"
"""Name of the logged model inside its run."""

_REQUIRED_PACKAGES = ("mlflow", "scikit-learn", "numpy", "pandas", "cloudpickle", "pillow")


def pip_requirements() -> list[str]:
    """The model's pinned requirements, listed explicitly.

    MLflow would otherwise infer them by importing the model in a subprocess, which costs
    several seconds per ``log_model``. Loading the model also needs the ``artpulse`` package
    itself (``artpulse_contract.classifier``), which the runtime image installs.
    """
    return [f"{name}=={package_version(name)}" for name in _REQUIRED_PACKAGES]


def log_classifier(estimator: Any, example_rows: np.ndarray) -> ModelInfo:
    """Log ``estimator`` as an ``ArtPulseClassifier`` pyfunc in the active run.

    The signature and input example are taken from ``example_rows`` (feature rows).
    """
    model = ArtPulseClassifier(estimator)
    example = pd.DataFrame(example_rows.astype(np.float64), columns=list(FEATURE_NAMES))
    signature = infer_signature(example, model.predict(None, example))
    return mlflow.pyfunc.log_model(
        name=MODEL_ARTIFACT_NAME,
        python_model=model,
        signature=signature,
        input_example=example,
        pip_requirements=pip_requirements(),
    )


def register_version(
    client: MlflowClient, model_uri: str, name: str, tags: dict[str, str]
) -> tuple[str, list[str]]:
    """Register ``model_uri`` as a new version of ``name`` with ``tags``.

    Sets the alias ``challenger`` on it, and ``champion`` too when the model has none.
    Returns the version and the aliases set.
    """
    created = mlflow.register_model(model_uri, name, tags=tags)
    version = str(created.version)
    aliases = [ALIAS_CHALLENGER]
    client.set_registered_model_alias(name, ALIAS_CHALLENGER, version)
    if version_for_alias(client, name, ALIAS_CHAMPION) is None:
        client.set_registered_model_alias(name, ALIAS_CHAMPION, version)
        aliases.append(ALIAS_CHAMPION)
    return version, aliases
