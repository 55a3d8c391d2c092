"""``python -m artpulse_runtime.server <folder>``: what ``artpulse serve``, the image and the
Deployment run (``mlserver start <folder>`` stays the unguarded development path)."""

from artpulse_runtime.server.main import main

main()
