"""ArtPulse operator: keeps serving Deployments on the version an MLflow alias names.

Run with ``kopf run -m artpulse_operator`` (or ``artpulse operator``); importing the package
registers the handlers.
"""

from artpulse_operator import handlers as handlers
