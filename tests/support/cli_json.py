"""Read what ``artpulse <command> --json`` printed and check it against the command's schema."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import jsonschema
from referencing import Registry, Resource

import artpulse_jobs

SCHEMAS = Path(artpulse_jobs.__file__).parent / "schemas"
"""The JSON Schemas of the ``--json`` documents (the files the README points to)."""


def schema(name: str) -> dict[str, Any]:
    """The JSON Schema ``<name>.schema.json``, itself checked as a valid 2020-12 schema."""
    loaded: dict[str, Any] = json.loads((SCHEMAS / f"{name}.schema.json").read_text())
    jsonschema.Draft202012Validator.check_schema(loaded)
    return loaded


def schema_registry() -> Registry[Any]:
    """Every schema under its ``$id``, the way one refers to another (retrain's document holds a
    drift check and a training as ``drift`` and ``train`` print them)."""
    names = [path.name.removesuffix(".schema.json") for path in SCHEMAS.glob("*.schema.json")]
    return Registry().with_resources(
        (schema(name)["$id"], Resource.from_contents(schema(name))) for name in names
    )


def validated(stdout: str, name: str) -> dict[str, Any]:
    """The one JSON document ``stdout`` holds (nothing else), valid against schema ``name``."""
    document: dict[str, Any] = json.loads(stdout)
    validator = jsonschema.Draft202012Validator(
        schema(name),
        registry=schema_registry(),
        format_checker=jsonschema.Draft202012Validator.FORMAT_CHECKER,
    )
    errors = sorted(validator.iter_errors(document), key=lambda error: list(error.path))
    assert not errors, "; ".join(f"{list(e.path)}: {e.message}" for e in errors)
    return document
