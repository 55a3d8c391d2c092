"""A model version that registers fine and cannot load in the serving image.

Its pyfunc is a class of this test-support module, which cloudpickle stores by reference: the
runtime image has no ``support`` package, so loading it there fails with ModuleNotFoundError,
like a version logged with code the image does not ship.
"""

from __future__ import annotations

from typing import Any

import mlflow
from mlflow.pyfunc import PythonModel

from artpulse_contract.constants import MODEL_NAME


class CodeNotInTheImage(PythonModel):
    """A pyfunc whose class only the test process can import."""

    def predict(
        self, context: Any, model_input: list[str], params: dict[str, Any] | None = None
    ) -> list[str]:
        """Its input back: it works wherever its class can be imported, which a server
        without this package cannot."""
        return model_input


def register_unloadable_version(tracking_uri: str) -> str:
    """Log and register a version of the ArtPulse model that cannot load; return its number."""
    mlflow.set_tracking_uri(tracking_uri)
    mlflow.set_registry_uri(tracking_uri)
    with mlflow.start_run(run_name="e2e-unloadable-version"):
        info = mlflow.pyfunc.log_model(
            name="model", python_model=CodeNotInTheImage(), pip_requirements=["mlflow"]
        )
    return str(mlflow.register_model(info.model_uri, MODEL_NAME).version)
