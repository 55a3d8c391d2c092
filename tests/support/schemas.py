"""Validate rendered objects offline: built-in kinds with kubernetes-validate, custom resources
against the openAPIV3Schema of a CRD rendered alongside them."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import jsonschema
import kubernetes_validate

from support.kustomize import Obj

KUBERNETES_VERSION = "1.33.0"
"""The schema version the manifests must satisfy (strict: unknown fields are errors)."""


@dataclass
class ValidationReport:
    """Outcome of validating a set of objects."""

    errors: list[str] = field(default_factory=list)
    """One line per invalid object: kind/name, the field path and the schema's message."""
    without_schema: list[str] = field(default_factory=list)
    """Objects neither kubernetes-validate nor a rendered CRD knows (e.g. a ServiceMonitor)."""
    validated: int = 0


def _crd_schemas(objects: list[Obj]) -> dict[tuple[str, str], dict[str, Any]]:
    schemas: dict[tuple[str, str], dict[str, Any]] = {}
    for obj in objects:
        if obj["kind"] != "CustomResourceDefinition":
            continue
        spec = obj["spec"]
        for version in spec["versions"]:
            api_version = f"{spec['group']}/{version['name']}"
            schemas[(api_version, spec["names"]["kind"])] = version["schema"]["openAPIV3Schema"]
    return schemas


def _name(obj: Obj) -> str:
    return f"{obj['kind']}/{obj['metadata']['name']}"


def validate_objects(objects: list[Obj], version: str = KUBERNETES_VERSION) -> ValidationReport:
    """Validate every object strictly; custom resources against their rendered CRD."""
    report = ValidationReport()
    crd_schemas = _crd_schemas(objects)
    for obj in objects:
        key = (obj["apiVersion"], obj["kind"])
        if key in crd_schemas:
            validator = jsonschema.Draft7Validator(crd_schemas[key])
            for error in validator.iter_errors(obj):
                path = ".".join(str(part) for part in error.path)
                report.errors.append(f"{_name(obj)}: {path}: {error.message}")
            report.validated += 1
            continue
        try:
            kubernetes_validate.validate(obj, version, strict=True)
        except kubernetes_validate.ValidationError as error:
            path = ".".join(str(part) for part in error.path)
            report.errors.append(f"{_name(obj)}: {path}: {error.message}")
        except kubernetes_validate.SchemaNotFoundError:
            report.without_schema.append(f"{obj['apiVersion']} {_name(obj)}")
            continue
        report.validated += 1
    return report
