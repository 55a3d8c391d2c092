"""Figures logged with training runs, drawn with matplotlib's object API on the Agg canvas.

No pyplot: no global figure state, nothing to close, and no display is ever needed.
matplotlib is imported on first use: it costs about a second, which every ``artpulse``
command would otherwise pay at start-up (the CLI imports all sub-commands).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from artpulse_contract.constants import LABELS


def save_confusion_matrix(confusion: np.ndarray, title: str, path: Path) -> Path:
    """Draw a labelled confusion matrix (rows true, columns predicted) as a PNG at ``path``."""
    from matplotlib.figure import Figure

    figure = Figure(figsize=(5.2, 4.4), dpi=80)
    axes = figure.add_subplot()
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
    # Fixed margins that fit the longest label; tight_layout costs a third of the drawing.
    figure.subplots_adjust(left=0.24, bottom=0.24, right=0.97, top=0.92)
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, format="png")
    return path
