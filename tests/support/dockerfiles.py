"""Read Dockerfiles and .dockerignore the way the builder does, for tests that cannot build.

No Docker engine runs here: the tests read the instructions, apply the ignore file to the
checkout, and replay the install steps with pip.
"""

from __future__ import annotations

import fnmatch
import shlex
from dataclasses import dataclass, field
from pathlib import Path


@dataclass
class Instruction:
    """One Dockerfile instruction with its continuation lines joined."""

    keyword: str
    value: str


@dataclass
class Stage:
    """One ``FROM`` stage and the instructions under it."""

    base: str
    name: str | None
    instructions: list[Instruction] = field(default_factory=list)

    def values(self, keyword: str) -> list[str]:
        """The values of every instruction of ``keyword`` in this stage."""
        return [i.value for i in self.instructions if i.keyword == keyword]


def parse_dockerfile(path: Path) -> list[Stage]:
    """Split a Dockerfile into stages of joined instructions (comments dropped)."""
    logical: list[str] = []
    pending = ""
    for raw in path.read_text().splitlines():
        line = raw.strip()
        if not pending and (not line or line.startswith("#")):
            continue
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        logical.append(pending + line)
        pending = ""
    stages: list[Stage] = []
    for line in logical:
        keyword, _, value = line.partition(" ")
        keyword = keyword.upper()
        if keyword == "FROM":
            words = value.split()
            name = words[2] if len(words) == 3 and words[1].upper() == "AS" else None
            stages.append(Stage(base=words[0], name=name))
        elif stages:
            stages[-1].instructions.append(Instruction(keyword, value.strip()))
    return stages


def stage_named(stages: list[Stage], name: str) -> Stage:
    """The stage ``FROM ... AS name``; ``KeyError`` naming it when there is none."""
    for stage in stages:
        if stage.name == name:
            return stage
    raise KeyError(f"no stage named {name!r}")


def copy_sources(stage: Stage) -> list[tuple[str, str]]:
    """``(source, destination)`` of every COPY from the build context (not ``--from``)."""
    pairs: list[tuple[str, str]] = []
    for value in stage.values("COPY"):
        words = shlex.split(value)
        if any(word.startswith("--from") for word in words):
            continue
        words = [w for w in words if not w.startswith("--")]
        pairs.extend((source, words[-1]) for source in words[:-1])
    return pairs


def _matches(pattern: str, relative: str) -> bool:
    # A pattern matches a path or any folder above it (excluding a folder excludes its files).
    pattern = pattern.strip("/")
    parts = relative.split("/")
    candidates = ["/".join(parts[: i + 1]) for i in range(len(parts))]
    if pattern.startswith("**/"):
        tail = pattern[3:]
        return any(fnmatch.fnmatchcase(part, tail) for part in parts) or any(
            fnmatch.fnmatchcase(c, tail) for c in candidates
        )
    return any(fnmatch.fnmatchcase(c, pattern) for c in candidates)


def context_files(root: Path, ignore_file: Path) -> list[str]:
    """Paths (relative, ``/``-separated) of the files a build context of ``root`` contains."""
    rules = []
    for raw in ignore_file.read_text().splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        negate = line.startswith("!")
        rules.append((negate, line[1:] if negate else line))
    kept = []
    for path in sorted(root.rglob("*")):
        relative = path.relative_to(root).as_posix()
        if not path.is_file() or relative.startswith((".git/", ".venv/")):
            continue
        included = True
        for negate, pattern in rules:
            if _matches(pattern, relative):
                included = negate
        if included:
            kept.append(relative)
    return kept
