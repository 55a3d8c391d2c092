"""Figures logged with training runs (matplotlib, headless Agg backend)."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # headless: no display, and the backend must be chosen first

import matplotlib.pyplot as plt
import numpy as np

from artpulse_runtime.constants import LABELS


def save_confusion_matrix(confusion: np.ndarray, title: str, path: Path) -> Path:
    """Draw a labelled confusion matrix (rows true, columns predicted) as a PNG at ``path``."""
    figure, axes = plt.subplots(figsize=(5.2, 4.4), dpi=80)
    try:
        axes.imshow(confusion, cmap="Blues")
        ticks = np.arange(len(LABELS))
        axes.set_xticks(ticks, LABELS, rotation=35, ha="right")
        axes.set_yticks(ticks, LABELS)
        axes.set_xlabel("predicted")
        axes.set_ylabel("true")
        axes.set_title(title)
        threshold = confusion.max() / 2 if confusion.size else 0
        for row in range(confusion.shape[0]):
            for column in range(confusion.shape[1]):
                value = int(confusion[row, column])
                colour = "white" if value > threshold else "black"
                axes.text(column, row, str(value), ha="center", va="center", color=colour)
        figure.tight_layout()
        path.parent.mkdir(parents=True, exist_ok=True)
        figure.savefig(path)
    finally:
        plt.close(figure)
    return path
