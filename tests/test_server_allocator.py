"""The glibc malloc settings a server process gets (``SERVER_ENV_DEFAULTS``) do what they are
for: a photo's buffers are reused from one request to the next instead of being faulted in
afresh, and a max-size request's buffers go back to the system when freed.

Each case runs a child Python with the server's environment, allocates and frees buffers the
way requests do (several at once, then all freed), and counts the page faults of the later
rounds per page allocated (``getrusage``).
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from artpulse_contract.settings import ArtPulseSettings
from artpulse_jobs.serving.server import server_environment
from artpulse_runtime.server.settings import MIB

_FAULTS_PER_PAGE = """
import resource, sys
size, count = int(sys.argv[1]), int(sys.argv[2])
def requests_round():
    held = [b"x" * size for _ in range(count)]  # written, so every page is touched
    del held
requests_round()
requests_round()
before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
for _ in range(5):
    requests_round()
faults = resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before
print(faults / 5 / (size * count / resource.getpagesize()))
"""


def _faults_per_page(size: int, count: int, state_dir: Path) -> float:
    env = server_environment(ArtPulseSettings(state_dir=state_dir), base={})
    run = subprocess.run(
        [sys.executable, "-c", _FAULTS_PER_PAGE, str(size), str(count)],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    return float(run.stdout)


def test_photo_sized_buffers_are_reused_between_requests(tmp_path: Path) -> None:
    # Four 4 MiB buffers at once: a 3 MB photo's body, its decoded bytes, the worker's copy.
    assert _faults_per_page(4 * MIB, 4, tmp_path) < 0.05


def test_max_size_buffers_go_back_to_the_system(tmp_path: Path) -> None:
    # Two 24 MiB bodies (the largest image over REST): mapped for each request, unmapped after.
    assert _faults_per_page(24 * MIB, 2, tmp_path) > 0.25
