"""ArtPulse jobs: image datasets, training, drift detection, retraining and promotion."""
