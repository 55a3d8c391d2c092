"""Logging the chosen estimator as an MLflow pyfunc model and registering it with aliases."""

from __future__ import annotations

import importlib.util
import tempfile
from importlib.metadata import version as package_version
from pathlib import Path
from typing import Any

import mlflow
import numpy as np
import pandas as pd
from mlflow import MlflowClient
from mlflow.models import infer_signature
from mlflow.models.model import ModelInfo

from artpulse_contract.classifier import ArtPulseClassifier
from artpulse_contract.constants import ALIAS_CHALLENGER, ALIAS_CHAMPION, FEATURE_NAMES, FeatureMode
from artpulse_contract.estimator_store import ESTIMATOR_ARTIFACT, save_estimator
from artpulse_contract.registry.lookups import version_for_alias
from artpulse_contract.registry.tags import FEATURE_MODE
from artpulse_contract.scoring import SCORER_ARTIFACT

MODEL_ARTIFACT_NAME = "model"
"""Name of the logged model inside its run."""

_REQUIRED_PACKAGES = ("mlflow", "scikit-learn", "numpy", "pandas", "skops", "pillow")


def pip_requirements() -> list[str]:
    """The model's pinned requirements, listed explicitly.

    MLflow would otherwise infer them by importing the model in a subprocess, which costs
    several seconds per ``log_model``. Loading the model also needs the ``artpulse`` package
    itself (``artpulse_contract.classifier``), which the runtime image installs.
    """
    return [f"{name}=={package_version(name)}" for name in _REQUIRED_PACKAGES]


PYFUNC_MODULE = "artpulse_contract.pyfunc_model"
"""The models-from-code file every logged model runs to load (found, never imported here:
running it registers the model with MLflow)."""


def pyfunc_code() -> Path:
    """The file of ``PYFUNC_MODULE``."""
    spec = importlib.util.find_spec(PYFUNC_MODULE)
    if spec is None or spec.origin is None:
        raise FileNotFoundError(f"{PYFUNC_MODULE} is not installed")
    return Path(spec.origin)


def log_classifier(
    estimator: Any, example_rows: np.ndarray, feature_mode: FeatureMode = FeatureMode.EXACT
) -> ModelInfo:
    """Log ``estimator`` as an ``ArtPulseClassifier`` pyfunc in the active run.

    The pyfunc is logged as code, the estimator as a skops artifact and its ``Scorer`` as
    plain arrays with the feature mode (see ``artpulse_contract.classifier``; the mode is also
    in the model's metadata). The signature and input example are taken from
    ``example_rows`` (feature rows, computed in ``feature_mode``).
    """
    model = ArtPulseClassifier(estimator, feature_mode)
    example = pd.DataFrame(example_rows.astype(np.float64), columns=list(FEATURE_NAMES))
    signature = infer_signature(example, model.predict(None, example))
    with tempfile.TemporaryDirectory() as folder:
        stored = save_estimator(estimator, Path(folder) / f"{ESTIMATOR_ARTIFACT}.skops")
        scorer = model.loaded_scorer.save(Path(folder) / f"{SCORER_ARTIFACT}.npz")
        return mlflow.pyfunc.log_model(
            name=MODEL_ARTIFACT_NAME,
            python_model=pyfunc_code(),
            artifacts={ESTIMATOR_ARTIFACT: str(stored), SCORER_ARTIFACT: str(scorer)},
            metadata={FEATURE_MODE: feature_mode.value},
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
