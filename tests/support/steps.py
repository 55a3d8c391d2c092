"""Named, timed steps of a long end-to-end run, printed as they happen and summed up at the end."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field


@dataclass
class Steps:
    """Prints ``[e2e] ...`` lines through ``write`` and keeps each step's duration."""

    write: Callable[[str], None]
    durations: list[tuple[str, float, bool]] = field(default_factory=list)
    facts: list[str] = field(default_factory=list)

    @contextmanager
    def step(self, name: str) -> Iterator[None]:
        """Time the block as step ``name``; the line says whether it failed."""
        self.write(f"[e2e] {name} ...")
        start = time.monotonic()
        ok = False
        try:
            yield
            ok = True
        finally:
            seconds = time.monotonic() - start
            self.durations.append((name, seconds, ok))
            self.write(f"[e2e] {name}: {'done' if ok else 'FAILED'} in {seconds:.1f} s")

    def note(self, fact: str) -> None:
        """Print a measured fact and keep it for the summary."""
        self.facts.append(fact)
        self.write(f"[e2e]   {fact}")

    def summary(self) -> str:
        """Every step with its duration, then every fact noted."""
        lines = [f"{seconds:8.1f} s  {'ok  ' if ok else 'FAIL'}  {name}"
                 for name, seconds, ok in self.durations]  # fmt: skip
        total = sum(seconds for _, seconds, _ in self.durations)
        lines.append(f"{total:8.1f} s  total")
        return "\n".join(lines + [f"  - {fact}" for fact in self.facts])
