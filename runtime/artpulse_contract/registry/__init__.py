"""The one place ArtPulse talks to MLflow's registry from: model URIs, alias lookups and
moves, error classification, HTTP limits and tracking set-up, and every ``artpulse.*`` tag."""
