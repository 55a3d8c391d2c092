"""The README's serving examples, run as written against real servers.

Each ``sh`` block the README marks ``<!-- tested: ... -->`` runs in bash (``-e``, ``pipefail``)
in a folder holding ``painting.png`` (too large for a base64 command-line argument: the
kernel's 128 KiB limit per argument) and ``another.jpg``; only the address changes
(``localhost:8080`` becomes the test server's, and ``artpulse predict`` and ``make predict``
find it through ``ARTPULSE_SERVER_URL`` and ``ARTPULSE_GRPC_TARGET``).
"""

from __future__ import annotations

import base64
import io
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from artpulse_jobs.serving.server import ServerHandle, server_on_free_ports
from support.kustomize import REPO
from support.serving import Served
from support.serving_keys import Keys, write_keys

pytest_plugins = ["support.serving_plugin"]
pytestmark = pytest.mark.slow

MARKED = re.compile(r"<!-- tested: (?P<name>[^(]+?) \([^)]*\) -->\n```sh\n(?P<code>.*?)```", re.S)
ARGUMENT_LIMIT = 128 * 1024
"""Linux's MAX_ARG_STRLEN: the longest single command-line argument."""


def readme_blocks() -> dict[str, str]:
    """The marked blocks of the README, by name."""
    return {m["name"]: m["code"] for m in MARKED.finditer((REPO / "README.md").read_text())}


def test_the_serving_examples_are_marked() -> None:
    assert set(readme_blocks()) == {"serving", "serving with keys"}


@pytest.fixture(scope="module")
def workdir(tmp_path_factory: pytest.TempPathFactory, served: Served) -> Path:
    folder = tmp_path_factory.mktemp("readme")
    noise = np.random.default_rng(0).integers(0, 256, (250, 300, 3), dtype=np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(noise).save(buffer, format="PNG")
    (folder / "painting.png").write_bytes(buffer.getvalue())
    Image.open(io.BytesIO(served.images[1])).convert("RGB").save(folder / "another.jpg")
    for name in ("Makefile", ".venv", "pyproject.toml", "constraints.txt"):
        (folder / name).symlink_to(REPO / name)  # `make predict` as in a clone
    return folder


@pytest.fixture(scope="module")
def keyed(served: Served, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple]:
    keys: Keys = write_keys(tmp_path_factory.mktemp("readme-keys"))
    with server_on_free_ports(served.settings, env=keys.env) as server:
        yield server, keys


def run_block(code: str, server: ServerHandle, folder: Path, env: dict[str, str]) -> str:
    address = server.http_url.removeprefix("http://")
    script = code.replace("localhost:8080", address)
    environment = {
        **os.environ,
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
        "ARTPULSE_SERVER_URL": server.http_url,
        "ARTPULSE_GRPC_TARGET": server.grpc_target,
        "MAKEFLAGS": "-o .venv/.installed",  # the venv is the one running the tests
        **env,
    }
    result = subprocess.run(
        ["bash", "-e", "-o", "pipefail", "-c", script],
        cwd=folder,
        env=environment,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout


def test_the_image_is_too_large_for_a_command_line_argument(workdir: Path) -> None:
    encoded = base64.b64encode((workdir / "painting.png").read_bytes())
    assert len(encoded) > ARGUMENT_LIMIT


def test_the_serving_examples_work(served: Served, workdir: Path) -> None:
    code = readme_blocks()["serving"]
    output = run_block(code, served.server, workdir, {})
    answers = output.count(f'"model_version":"{served.version}"')
    assert answers == code.count("curl -s "), output
    assert '"error"' not in output
    predictions = output.count(f"model artpulse-classifier version {served.version}")
    json_answers = output.count(f'"model_version": "{served.version}"')
    assert predictions + json_answers == code.count("artpulse predict") + code.count("make predict")


def test_the_examples_with_keys_work(keyed: tuple, workdir: Path) -> None:
    server, keys = keyed
    code = readme_blocks()["serving with keys"]
    output = run_block(code, server, workdir, {"KEY": keys.client})
    assert '"error"' not in output
    assert output.count('"model_name":"artpulse-classifier"') == code.count("curl -s ")
    assert output.count("model artpulse-classifier version") == code.count("artpulse predict")
