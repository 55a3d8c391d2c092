"""How a model's scikit-learn estimator is stored: with skops, never pickle.

Loading rebuilds only scikit-learn and numpy objects plus the types listed in
``TRUSTED_TYPES`` (the trees of the forest and boosting candidates), so a tampered artifact
cannot run code. skops (and with it scikit-learn) is imported when an estimator is stored or
loaded, not with this module: a server of a linear model needs neither (``scoring``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

ESTIMATOR_ARTIFACT = "estimator"
"""The logged model's artifact holding the estimator (``estimator.skops``)."""

TRUSTED_TYPES = (
    "sklearn.tree._tree.Tree",
    "sklearn.ensemble._hist_gradient_boosting.predictor.TreePredictor",
)
"""Types beyond skops' defaults that the candidates' estimators hold, and nothing else."""


class UntrustedEstimatorError(ValueError):
    """A stored estimator holds types outside ``TRUSTED_TYPES``; it is not loaded."""


def save_estimator(estimator: Any, path: Path) -> Path:
    """Store ``estimator`` with skops at ``path``; refuse one that could not be loaded back."""
    import skops.io

    data = skops.io.dumps(estimator)
    untrusted = set(skops.io.get_untrusted_types(data=data)) - set(TRUSTED_TYPES)
    if untrusted:
        raise UntrustedEstimatorError(
            f"{type(estimator).__name__} holds types outside TRUSTED_TYPES: {sorted(untrusted)}"
        )
    path.write_bytes(data)
    return path


def load_estimator(path: Path | str) -> Any:
    """The estimator stored at ``path``; ``UntrustedEstimatorError`` naming any type outside
    ``TRUSTED_TYPES`` (nothing of the file is run)."""
    import skops.io
    from skops.io.exceptions import UntrustedTypesFoundException

    try:
        return skops.io.load(path, trusted=list(TRUSTED_TYPES))
    except UntrustedTypesFoundException as error:
        raise UntrustedEstimatorError(f"{path}: {error}") from error
