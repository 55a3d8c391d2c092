"""pytest plugin: the rendered overlays the manifest policy modules check, rendered once.

Each overlay alone, and prod with the optional components that add workloads or traffic
(external-database removes PostgreSQL, so its peers would select nothing: checked apart).
Modules name it in ``pytest_plugins`` (importing it would render once per module).
"""

from __future__ import annotations

import pytest

from support.kustomize import OVERLAYS, Obj, render_overlay

RENDERINGS = {
    **{overlay: (overlay, ()) for overlay in OVERLAYS},
    "prod+components": ("prod", ("ingress", "servicemonitor", "registry-webhook")),
}


@pytest.fixture(scope="session", params=sorted(RENDERINGS))
def objects(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> list[Obj]:
    """The rendered objects of one overlay (or overlay with components)."""
    overlay, components = RENDERINGS[request.param]
    workdir = tmp_path_factory.mktemp(f"policy-{overlay}")
    return render_overlay(overlay, workdir, components)
