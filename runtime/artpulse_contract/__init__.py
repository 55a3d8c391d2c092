"""The ArtPulse contract: names, features, settings, the registry and retry rules shared by the
serving runtime, the jobs and the operator. It imports nothing else of ArtPulse."""
