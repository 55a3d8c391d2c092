"""pytest plugin: one served model shared by the modules that name it in ``pytest_plugins``.

A fixture imported into two test modules is set up once per module; registered as a plugin
it is set up once, so ``test_serving_server`` and ``test_serving_server_errors`` share one
``mlserver`` process. Test modules must not import this module: pytest could then not
register it as a plugin cleanly (it warns that the module was already imported).
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from support.serving import Served, served_model


@pytest.fixture(scope="session")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    """A trained champion served by a real ``mlserver`` until the session ends."""
    with served_model(tmp_path_factory.mktemp("serving")) as running:
        yield running
