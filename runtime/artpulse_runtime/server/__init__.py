"""The ArtPulse server: MLServer behind a guard (keys, closed admin API, bounded requests,
liveness that notices a lost model). Run it with ``python -m artpulse_runtime.server``."""
