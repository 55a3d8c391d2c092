"""``python -m artpulse_runtime.server <folder>``: what ``artpulse serve``, the image and the
Deployment run (``mlserver start <folder>`` stays the unguarded development path).

The configured model's registry helper starts first, so it runs on another core while this
process imports MLServer (see ``artpulse_runtime.fetching``).
"""

from artpulse_runtime.fetching import prefetch_configured_model

prefetch_configured_model()

from artpulse_runtime.server.main import main  # noqa: E402 - after the prefetch has started

main()
