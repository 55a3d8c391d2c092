"""Find and load the registered model a server runs (a pinned version or an alias).

An alias is resolved once, by the fetching helper (``fetching``), so the server always knows
which registry version it serves. The server loads the version's ``Scorer``
(``SCORER_ARTIFACT``): neither MLflow nor scikit-learn (for a linear model) is imported to
serve it. A version registered before scorers were stored loads through its MLflow pyfunc.
Failures are typed (``ModelLoadError``) with a message an operator can act on; the runtime
retries them on the contract's backoff schedule.
"""

from __future__ import annotations

import pickle
from dataclasses import dataclass

from artpulse_contract.constants import SCORER_ARTIFACT, FeatureMode
from artpulse_contract.registry.uris import InvalidModelURI, parse_model_uri
from artpulse_contract.scoring import Scorer
from artpulse_runtime.fetching import FetchedModel, ModelLoadError, fetched

__all__ = ["LoadedModel", "ModelLoadError", "load_registered_model"]


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

    # suppress_warnings skips MLflow's requirement check, which scans every installed
    # distribution (about a second of start-up); the image pins the training packages.
    loaded = mlflow.pyfunc.load_model(str(model.path), suppress_warnings=True)
    classifier = loaded.unwrap_python_model()
    if not isinstance(classifier, ArtPulseClassifier):
        raise ModelLoadError(
            f"version {model.version} of {model.name!r} is a {type(classifier).__name__}, "
            "not an ArtPulseClassifier pyfunc"
        )
    return classifier.scorer


def _scorer(model: FetchedModel) -> Scorer:
    path = model.path / SCORER_ARTIFACT
    if not path.is_file():
        return _pyfunc_scorer(model)
    try:
        scorer = pickle.loads(path.read_bytes())
    except Exception as exc:  # a damaged or foreign file: whatever unpickling raises
        raise ModelLoadError(
            f"version {model.version} of {model.name!r}: {SCORER_ARTIFACT} does not load: {exc}"
        ) from exc
    if not isinstance(scorer, Scorer):
        raise ModelLoadError(
            f"version {model.version} of {model.name!r}: {SCORER_ARTIFACT} holds a "
            f"{type(scorer).__name__}, not a Scorer"
        )
    return scorer


def load_registered_model(tracking_uri: str, uri: str) -> LoadedModel:
    """Resolve ``uri`` in the registry at ``tracking_uri`` and load that pinned version."""
    try:
        parse_model_uri(uri)
    except InvalidModelURI as error:
        raise ModelLoadError(str(error)) from error
    with fetched(tracking_uri, uri) as model:
        return LoadedModel(model.name, model.version, _scorer(model))
