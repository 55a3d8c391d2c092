"""Training: candidates fitted and scored, the chosen model logged to MLflow and registered."""
