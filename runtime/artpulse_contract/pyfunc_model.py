"""The ArtPulse pyfunc as code (MLflow's models-from-code): what a logged model runs to load.

MLflow copies this file into every logged model and runs it when the model loads: it only
names the installed ``ArtPulseClassifier``, which then reads its estimator from the model's
skops artifact (``load_context``). Nothing is unpickled.
"""

from mlflow.models import set_model

from artpulse_contract.classifier import ArtPulseClassifier

set_model(ArtPulseClassifier())
