"""ArtPulse runtime: the MLServer adapter (runtime class, codecs, extraction, batching,
lifecycle) and the server front that guards it; the contract it serves is ``artpulse_contract``."""
