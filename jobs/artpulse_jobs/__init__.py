"""ArtPulse jobs: the ``artpulse`` command (``commands``) over image data, training, monitoring,
promotion, serving and the demo, one subpackage each; ``reporting`` prints what they did."""
