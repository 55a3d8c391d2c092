"""Names of the ArtPulseModel API and of what the operator writes: one place for all of them."""

from typing import Final

GROUP: Final = "artpulse.io"
VERSION: Final = "v1alpha1"
PLURAL: Final = "artpulsemodels"
KIND: Final = "ArtPulseModel"
SHORT_NAME: Final = "apm"
API_VERSION: Final = f"{GROUP}/{VERSION}"

MODEL_VERSION_ANNOTATION: Final = "artpulse.io/model-version"
"""Pod-template annotation holding the pinned model version the pods run."""

TRACK_LABEL: Final = "artpulse.io/track"
"""Label on a canary Deployment, its selector and its pods (value ``canary``); the Service
selects on the Deployment's own labels only, so canary pods share its traffic."""
TRACK_CANARY: Final = "canary"
CANARY_OF_LABEL: Final = "artpulse.io/canary-of"
"""Label on a canary Deployment naming the ArtPulseModel that made it (and owns it)."""
CANARY_SUFFIX: Final = "-canary"
"""A canary Deployment is named after the serving Deployment: ``<deployment>-canary``."""

KOPF_PREFIX: Final = "artpulse.io"
"""Prefix of kopf's own annotations (handler progress, last handled spec) and finalizer."""

FINALIZER: Final = "artpulse.io/operator"
"""Finalizer kopf puts on a resource while the operator's per-resource loop runs."""

PROMOTED_BY_OPERATOR: Final = "artpulse-operator"
"""A promotion through ``spec.version`` tags the version ``artpulse.promoted_by`` =
``artpulse-operator:<namespace>/<resource name>`` (and the field manager that set it)."""

DEFAULT_POLL_SECONDS: Final = 10
ROLLOUT_CHECK_SECONDS: Final = 5
"""While a rollout or a canary is in flight it is re-checked at least this often."""
DEFAULT_CONTAINER: Final = "runtime"
DEFAULT_DEPLOYMENT: Final = "artpulse-runtime"

# Condition types on the resource's status.
COND_REGISTRY: Final = "RegistryReachable"
COND_DEPLOYMENT: Final = "DeploymentFound"
COND_READY: Final = "Ready"

# Phases.
PHASE_PENDING: Final = "Pending"
PHASE_ROLLING_OUT: Final = "RollingOut"
PHASE_SERVING: Final = "Serving"
PHASE_DEGRADED: Final = "Degraded"
PHASE_ROLLED_BACK: Final = "RolledBack"
PHASE_ERROR: Final = "Error"
PHASE_PAUSED: Final = "Paused"
PHASE_CANARY: Final = "Canary"
PHASE_ABORTED: Final = "Aborted"
PHASES: Final = (
    PHASE_PENDING,
    PHASE_ROLLING_OUT,
    PHASE_SERVING,
    PHASE_DEGRADED,
    PHASE_ROLLED_BACK,
    PHASE_ERROR,
    PHASE_PAUSED,
    PHASE_CANARY,
    PHASE_ABORTED,
)

# Rollout strategies (spec.rollout.strategy).
STRATEGY_RECREATE: Final = "Recreate"
STRATEGY_ROLLING: Final = "Rolling"
STRATEGY_CANARY: Final = "Canary"
STRATEGIES: Final = (STRATEGY_RECREATE, STRATEGY_ROLLING, STRATEGY_CANARY)

# What started a canary (status.canary.source).
SOURCE_SPEC_VERSION: Final = "spec.version"
SOURCE_CHALLENGER: Final = "challenger"

# Event reasons posted on the resource.
REASON_ROLLOUT: Final = "RolloutStarted"
REASON_ROLLOUT_DONE: Final = "RolloutComplete"
REASON_PROMOTED: Final = "Promoted"
REASON_ROLLED_BACK: Final = "RolledBack"
REASON_ROLLOUT_FAILED: Final = "RolloutFailed"
REASON_REGISTRY_DOWN: Final = "RegistryUnreachable"
REASON_REGISTRY_BACK: Final = "RegistryReachable"
REASON_DEPLOYMENT_MISSING: Final = "DeploymentMissing"
REASON_CONTAINER_MISSING: Final = "ContainerMissing"
REASON_MODEL_MISSING: Final = "ModelVersionMissing"
REASON_INVALID_SPEC: Final = "InvalidSpec"
REASON_CANARY_STARTED: Final = "CanaryStarted"
REASON_CANARY_STEP: Final = "CanaryStepPassed"
REASON_CANARY_PROMOTED: Final = "CanaryPromoted"
REASON_CANARY_ABORTED: Final = "CanaryAborted"
REASON_CANARY_CANCELLED: Final = "CanaryCancelled"
REASON_CANARY_RESTARTED: Final = "CanaryRestarted"
REASON_EVENTS_DOWN: Final = "EventStoreUnreachable"

PROGRESS_DEADLINE_EXCEEDED: Final = "ProgressDeadlineExceeded"
"""Reason of a Deployment's ``Progressing=False`` condition when a rollout stalls."""
