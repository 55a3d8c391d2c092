"""What the demo's steps share: settings, folders, options and results of earlier steps."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from artpulse_contract.settings import ArtPulseSettings

DEFAULT_PER_LABEL = 120
DEFAULT_SIZE = 256
DEFAULT_SEED = 0


@dataclass
class DemoContext:
    """What the demo steps share: settings, folders, options and results of earlier steps."""

    settings: ArtPulseSettings
    work_dir: Path
    """Folder for everything the demo writes besides the registry (images, reports)."""
    dataset_dir: Path
    """The generated training images."""
    eval_dir: Path
    """Images generated with another seed and size: the generalisation check."""
    per_label: int = DEFAULT_PER_LABEL
    size: int = DEFAULT_SIZE
    seed: int = DEFAULT_SEED
    results: dict[str, Any] = field(default_factory=dict)


DemoStep = Callable[[DemoContext], None]
