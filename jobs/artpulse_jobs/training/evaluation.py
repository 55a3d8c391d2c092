"""Scores of a classifier on labelled feature rows: accuracy, macro F1, per-class figures."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from sklearn.metrics import accuracy_score, confusion_matrix, precision_recall_fscore_support

from artpulse_contract.constants import LABELS


@dataclass(frozen=True)
class Evaluation:
    """Scores on one labelled set; ``confusion`` rows are true labels, columns predicted."""

    accuracy: float
    macro_f1: float
    precision: dict[str, float]
    recall: dict[str, float]
    f1: dict[str, float]
    confusion: np.ndarray

    def metrics(self, prefix: str = "") -> dict[str, float]:
        """Flat MLflow metric names: ``accuracy``, ``macro_f1``, ``f1_<label>``, ... ."""
        flat = {f"{prefix}accuracy": self.accuracy, f"{prefix}macro_f1": self.macro_f1}
        for name, values in (
            ("precision", self.precision),
            ("recall", self.recall),
            ("f1", self.f1),
        ):
            for label, value in values.items():
                flat[f"{prefix}{name}_{label}"] = value
        return flat


def evaluate(true_labels: np.ndarray, predicted: np.ndarray) -> Evaluation:
    """Score predicted label indices against true ones, over the labels present in either."""
    present = np.union1d(np.unique(true_labels), np.unique(predicted)).astype(np.int64)
    precision, recall, f1, _ = precision_recall_fscore_support(
        true_labels, predicted, labels=present, zero_division=0
    )
    names = [LABELS[i] for i in present]
    return Evaluation(
        accuracy=float(accuracy_score(true_labels, predicted)),
        macro_f1=float(np.mean(f1)),
        precision={n: float(v) for n, v in zip(names, precision, strict=True)},
        recall={n: float(v) for n, v in zip(names, recall, strict=True)},
        f1={n: float(v) for n, v in zip(names, f1, strict=True)},
        confusion=confusion_matrix(true_labels, predicted, labels=np.arange(len(LABELS))),
    )
