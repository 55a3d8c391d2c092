"""ArtPulse runtime: the feature contract and the MLServer model that serves it."""
