"""Find and load the registered model a server runs (a pinned version or an alias).

An alias is resolved once, by the fetching helper (``fetching``), so the server always knows
which registry version it serves. The server loads the version's ``Scorer``
(``SCORER_ARTIFACT``): neither MLflow nor scikit-learn (for a linear model) is imported to
serve it. A version registered before scorers were stored loads through its MLflow pyfunc.
Failures are typed (``ModelLoadError``) with a message an operator can act on; the runtime
retries them on the contract's backoff schedule.
"""

from __future__ import annotations

from dataclasses import dataclass

from artpulse_contract.constants import FeatureMode
from artpulse_contract.estimator_store import ESTIMATOR_ARTIFACT
from artpulse_contract.registry.uris import InvalidModelURI, parse_model_uri
from artpulse_contract.scoring import SCORER_ARTIFACT, Scorer, load_scorer
from artpulse_runtime.fetching import FetchedModel, ModelLoadError, fetched

__all__ = ["LoadedModel", "ModelLoadError", "load_registered_model"]

MODEL_ARTIFACTS_FOLDER = "artifacts"
"""Where MLflow puts a pyfunc's artifacts inside the logged model's folder."""


@dataclass(frozen=True)
class LoadedModel:
    """A registry version resolved and loaded: what a server serves."""

    name: str
    version: str
    scorer: Scorer

    @property
    def feature_mode(self) -> FeatureMode:
        """How this model's features are computed from images (what it was trained on)."""
        return self.scorer.feature_mode


def _pyfunc_scorer(model: FetchedModel) -> Scorer:
    """The scorer of a version registered before scorers were stored: through MLflow."""
    import mlflow.pyfunc  # only for such versions: MLflow costs a second or more to import

    from artpulse_contract.classifier import ArtPulseClassifier

    try:
        # suppress_warnings skips MLflow's requirement check, which scans every installed
        # distribution (about a second of start-up); the image pins the training packages.
        loaded = mlflow.pyfunc.load_model(str(model.path), suppress_warnings=True)
    except Exception as exc:  # e.g. a pickle naming code this server lacks: not ready, retried
        raise ModelLoadError(
            f"version {model.version} of {model.name!r}: loading its pyfunc failed: "
            f"{type(exc).__name__}: {exc}"
        ) from exc
    classifier = loaded.unwrap_python_model()
    if not isinstance(classifier, ArtPulseClassifier):
        raise ModelLoadError(
            f"version {model.version} of {model.name!r} is a {type(classifier).__name__}, "
            "not an ArtPulseClassifier pyfunc"
        )
    return classifier.loaded_scorer


def _scorer(model: FetchedModel) -> Scorer:
    """The version's scorer from its artifacts (skops and plain arrays: nothing unpickled),
    or through MLflow for a version pickled before (no estimator artifact)."""
    artifacts = model.path / MODEL_ARTIFACTS_FOLDER
    estimator_file = artifacts / f"{ESTIMATOR_ARTIFACT}.skops"
    if not estimator_file.is_file():
        return _pyfunc_scorer(model)
    scorer_file = artifacts / f"{SCORER_ARTIFACT}.npz"
    try:
        return load_scorer(estimator_file, scorer_file if scorer_file.is_file() else None)
    except Exception as exc:  # a damaged or foreign file: whatever reading it raises
        raise ModelLoadError(
            f"version {model.version} of {model.name!r}: its stored estimator or scorer does "
            f"not load: {exc}"
        ) from exc


def load_registered_model(tracking_uri: str, uri: str) -> LoadedModel:
    """Resolve ``uri`` in the registry at ``tracking_uri`` and load that pinned version."""
    try:
        parse_model_uri(uri)
    except InvalidModelURI as error:
        raise ModelLoadError(str(error)) from error
    with fetched(tracking_uri, uri) as model:
        return LoadedModel(model.name, model.version, _scorer(model))
