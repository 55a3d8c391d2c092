"""Names shared by the runtime, the jobs, the operator and the tests: the one place each is
defined (model and alias names, labels and feature columns, V2 tensor names, artifacts and
environment variables)."""

from enum import StrEnum
from typing import Final

MODEL_NAME: Final = "artpulse-classifier"
"""Registered model name in MLflow, and the model name on the V2 wire."""

ALIAS_CHAMPION: Final = "champion"
ALIAS_CHALLENGER: Final = "challenger"
ALIAS_PREVIOUS_CHAMPION: Final = "previous-champion"

LABELS: Final[tuple[str, ...]] = ("minimal", "neo-pop", "surreal", "monochrome", "vibrant")
"""Class labels; the position of a label is its class index."""

FEATURE_NAMES: Final[tuple[str, ...]] = ("hue_mean", "sat_mean", "val_mean", "contrast", "edges")
"""Feature columns, in the order every feature row uses."""


class FeatureMode(StrEnum):
    """How an image is brought to the contract's 128 x 128 before its features are computed.

    Every model records the mode it was trained in (the ``artpulse.feature_mode`` tag of its
    run and version, and inside its pyfunc); serving, drift and the gate use that mode. A model
    without the record is ``EXACT``.
    """

    EXACT = "exact"
    """Decode at full size, then resize: the contract's definition, bit for bit."""
    DRAFT = "draft"
    """JPEG is decoded straight to the smallest DCT scale (1/2, 1/4, 1/8) that keeps both sides
    at or above 128 px (Pillow's ``draft``), then resized the same way; other formats as
    ``EXACT``. Values differ slightly from ``EXACT`` (see the README's feature contract)."""


INPUT_IMAGE: Final = "image"
INPUT_FEATURES: Final = "features"
OUTPUT_LABEL: Final = "label"
OUTPUT_PROBABILITIES: Final = "probabilities"
OUTPUT_FEATURES: Final = "features"
OUTPUT_NAMES: Final = (OUTPUT_LABEL, OUTPUT_PROBABILITIES, OUTPUT_FEATURES)
"""Every output the model returns, in the order a response lists them by default."""

PROBABILITY_COLUMN_PREFIX: Final = "proba_"
"""The pyfunc model's output names its probability columns ``proba_<label>``."""

TRAINING_EXPERIMENT: Final = "training"
DRIFT_EXPERIMENT: Final = "drift"
PROMOTION_EXPERIMENT: Final = "promotion"
ROLLOUT_EXPERIMENT: Final = "rollout"
"""MLflow experiments of training runs, drift checks, promotions or rollbacks, and canary
rollouts (the operator's)."""

REFERENCE_STATS_ARTIFACT: Final = "reference_stats.json"
HOLDOUT_ARTIFACT: Final = "evaluation/holdout.npz"
DRIFT_REPORT_JSON: Final = "drift_report.json"
DRIFT_REPORT_HTML: Final = "drift_report.html"

MODEL_URI_ENV: Final = "ARTPULSE_MODEL_URI"
EVENTS_URL_ENV: Final = "ARTPULSE_EVENTS_URL"
STATE_DIR_ENV: Final = "ARTPULSE_STATE_DIR"
