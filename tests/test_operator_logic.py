"""The operator's decisions without a cluster: spec parsing, Deployment patches, reconcile."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml
from pydantic import ValidationError

from artpulse_contract.constants import MODEL_URI_ENV
from artpulse_operator import constants as c
from artpulse_operator.config import OperatorSettings
from artpulse_operator.deployment import (
    ContainerMissing,
    pin_patch,
    restore_patch,
    view_deployment,
)
from artpulse_operator.reconcile import Memory, Rollout, decide
from artpulse_operator.spec import MAX_POLL_SECONDS, InvalidSpec, parse_spec
from artpulse_operator.status import set_condition

NOW = "2026-11-28T12:00:00Z"
URI = "models:/artpulse-classifier/{}"


def deployment(
    version: str | None = None,
    *,
    uri: str | None = "models:/artpulse-classifier@champion",
    generation: int = 2,
    observed: int = 2,
    replicas: int = 1,
    available: int = 1,
    progressing: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """A Deployment as the API returns it, with just the fields the operator reads."""
    env = [] if uri is None else [{"name": MODEL_URI_ENV, "value": uri}]
    annotations = {} if version is None else {c.MODEL_VERSION_ANNOTATION: version}
    conditions = [progressing] if progressing else []
    return {
        "metadata": {"name": "artpulse-runtime", "generation": generation},
        "spec": {
            "replicas": replicas,
            "template": {
                "metadata": {"annotations": annotations},
                "spec": {"containers": [{"name": "sidecar"}, {"name": "runtime", "env": env}]},
            },
        },
        "status": {
            "observedGeneration": observed,
            "replicas": replicas,
            "updatedReplicas": replicas,
            "availableReplicas": available,
            "conditions": conditions,
        },
    }


EXCEEDED = {"type": "Progressing", "status": "False", "reason": "ProgressDeadlineExceeded"}


def test_spec_defaults_follow_champion_on_the_runtime_deployment() -> None:
    spec = parse_spec({})
    assert (spec.model_name, spec.alias, spec.deployment, spec.container) == (
        "artpulse-classifier",
        "champion",
        "artpulse-runtime",
        "runtime",
    )
    assert spec.version is None and spec.poll_seconds == 10 and spec.rollback_on_failure


@pytest.mark.parametrize(
    ("raw", "named"),
    [
        ({"alias": "latest"}, "spec.alias 'latest'"),
        ({"version": 0}, "spec.version"),
        ({"version": "two"}, "'two'"),
        ({"pollIntervalSeconds": 0}, "between 1 and 3600, got 0"),
        ({"trackingUri": "mlflow-host"}, "'mlflow-host' is not a URI"),
        ({"deployment": {"container": "Runtime!"}}, "'Runtime!'"),
        ({"paused": "yes"}, "spec.paused must be true or false"),
    ],
)
def test_invalid_spec_names_the_field_and_value(raw: dict[str, Any], named: str) -> None:
    with pytest.raises(InvalidSpec, match="spec") as caught:
        parse_spec(raw)
    assert named in str(caught.value)


def test_view_reads_the_env_annotation_and_rollout_state() -> None:
    view = view_deployment(deployment("4", uri=URI.format(4)), "runtime")
    assert view.served_version("artpulse-classifier") == "4"
    assert view.is_pinned(URI.format(4), "4") and not view.is_pinned(URI.format(5), "5")
    assert view.complete and not view.deadline_exceeded
    stalled = view_deployment(deployment("4", available=0, progressing=EXCEEDED), "runtime")
    assert stalled.deadline_exceeded and not stalled.complete
    behind = view_deployment(deployment(observed=1, progressing=EXCEEDED), "runtime")
    assert not behind.deadline_exceeded  # the controller has not seen the new template yet


def test_view_without_annotation_reads_a_pinned_uri_but_not_an_alias_uri() -> None:
    assert (
        view_deployment(deployment(uri=URI.format(7)), "runtime").served_version(
            "artpulse-classifier"
        )
        == "7"
    )
    assert view_deployment(deployment(), "runtime").served_version("artpulse-classifier") is None


def test_missing_container_lists_the_containers_found() -> None:
    with pytest.raises(ContainerMissing, match=r"no container 'server' \(containers: 'sidecar'"):
        view_deployment(deployment(), "server")


def test_pin_and_restore_patches_touch_only_the_env_entry_and_annotation() -> None:
    pin = pin_patch("runtime", URI.format(3), "3")
    template = pin["spec"]["template"]
    assert template["metadata"]["annotations"] == {c.MODEL_VERSION_ANNOTATION: "3"}
    assert template["spec"]["containers"] == [
        {
            "name": "runtime",
            "env": [{"name": MODEL_URI_ENV, "value": URI.format(3), "valueFrom": None}],
        }
    ]
    gone = restore_patch("runtime", None, None)["spec"]["template"]
    assert gone["metadata"]["annotations"] == {c.MODEL_VERSION_ANNOTATION: None}
    assert gone["spec"]["containers"][0]["env"] == [{"name": MODEL_URI_ENV, "$patch": "delete"}]
    back = restore_patch("runtime", {"name": MODEL_URI_ENV, "value": "x"}, "2")
    entry = back["spec"]["template"]["spec"]["containers"][0]["env"][0]
    assert entry == {"name": MODEL_URI_ENV, "value": "x", "valueFrom": None}


def test_a_new_alias_version_is_pinned_and_the_previous_template_remembered() -> None:
    view = view_deployment(deployment("1", uri=URI.format(1)), "runtime")
    decision = decide(parse_spec({}), Memory(), 1, "2", view, NOW)
    assert decision.phase == c.PHASE_ROLLING_OUT
    assert decision.patch == pin_patch("runtime", URI.format(2), "2")
    assert decision.memory.rollout == Rollout(
        "2", "1", {"name": MODEL_URI_ENV, "value": URI.format(1)}, NOW
    )
    assert [e.reason for e in decision.events] == [c.REASON_ROLLOUT]


def test_the_same_version_again_changes_nothing() -> None:
    view = view_deployment(deployment("2", uri=URI.format(2)), "runtime")
    decision = decide(parse_spec({}), Memory(), 1, "2", view, NOW)
    assert decision.patch is None and decision.events == ()
    assert decision.phase == c.PHASE_SERVING


def test_a_completed_rollout_is_reported_once_and_forgotten() -> None:
    view = view_deployment(deployment("2", uri=URI.format(2)), "runtime")
    memory = Memory(rollout=Rollout("2", "1", None, NOW))
    decision = decide(parse_spec({}), memory, 1, "2", view, NOW)
    assert decision.memory.rollout is None and decision.phase == c.PHASE_SERVING
    assert [e.reason for e in decision.events] == [c.REASON_ROLLOUT_DONE]


def test_a_stalled_rollout_is_rolled_back_and_not_retried_until_something_changes() -> None:
    previous_env = {"name": MODEL_URI_ENV, "value": URI.format(1)}
    memory = Memory(rollout=Rollout("2", "1", previous_env, NOW))
    stalled = view_deployment(
        deployment("2", uri=URI.format(2), available=0, progressing=EXCEEDED), "runtime"
    )
    rolled = decide(parse_spec({}), memory, 5, "2", stalled, NOW)
    assert rolled.phase == c.PHASE_ROLLED_BACK
    assert rolled.patch == restore_patch("runtime", previous_env, "1")
    assert "ProgressDeadlineExceeded" in rolled.message and "restored 1" in rolled.message
    assert rolled.memory == Memory(failed_version="2", failed_generation=5)
    restored = view_deployment(deployment("1", uri=URI.format(1), available=0), "runtime")
    again = decide(parse_spec({}), rolled.memory, 5, "2", restored, NOW)
    assert again.patch is None and again.phase == c.PHASE_ROLLED_BACK
    moved = decide(parse_spec({}), rolled.memory, 5, "3", restored, NOW)
    assert moved.patch == pin_patch("runtime", URI.format(3), "3")
    assert moved.memory.failed_version is None
    edited = decide(parse_spec({}), rolled.memory, 6, "2", restored, NOW)
    assert edited.patch == pin_patch("runtime", URI.format(2), "2")


def test_without_rollback_a_stalled_rollout_is_degraded_and_left_alone() -> None:
    memory = Memory(rollout=Rollout("2", "1", None, NOW))
    stalled = view_deployment(
        deployment("2", uri=URI.format(2), available=0, progressing=EXCEEDED), "runtime"
    )
    decision = decide(parse_spec({"rollbackOnFailure": False}), memory, 1, "2", stalled, NOW)
    assert decision.phase == c.PHASE_DEGRADED and decision.patch is None
    assert [e.reason for e in decision.events] == [c.REASON_ROLLOUT_FAILED]


def test_a_move_during_a_rollout_keeps_the_last_good_template_to_restore() -> None:
    memory = Memory(rollout=Rollout("2", "1", {"name": MODEL_URI_ENV, "value": "one"}, NOW))
    rolling = view_deployment(deployment("2", uri=URI.format(2), available=0), "runtime")
    decision = decide(parse_spec({}), memory, 1, "3", rolling, "later")
    assert decision.memory.rollout == Rollout(
        "3", "1", {"name": MODEL_URI_ENV, "value": "one"}, "later"
    )


def test_an_unset_alias_leaves_the_deployment_pending() -> None:
    view = view_deployment(deployment(), "runtime")
    decision = decide(parse_spec({}), Memory(), 1, None, view, NOW)
    assert decision.phase == c.PHASE_PENDING and decision.patch is None
    assert "points at no version" in decision.message


def test_memory_round_trips_through_the_status() -> None:
    memory = Memory(Rollout("2", None, None, NOW), failed_version="1", failed_generation=3)
    assert Memory.from_status(memory.to_status()) == memory
    assert Memory.from_status({}) == Memory()


def test_condition_transition_time_moves_only_when_the_status_flips() -> None:
    first = set_condition([], "RegistryReachable", True, "Reachable", "ok", "t1")
    same = set_condition(first, "RegistryReachable", True, "Reachable", "still ok", "t2")
    flipped = set_condition(same, "RegistryReachable", False, "Unreachable", "down", "t3")
    assert same[0]["lastTransitionTime"] == "t1" and same[0]["message"] == "still ok"
    assert flipped[0]["lastTransitionTime"] == "t3" and flipped[0]["status"] == "False"


def test_registry_retries_double_from_the_poll_interval_up_to_the_cap_with_jitter() -> None:
    settings = OperatorSettings(operator_max_backoff_seconds=60)
    for failures, ceiling in ((1, 10), (2, 20), (3, 40), (4, 60), (9, 60)):
        delays = {settings.retry_delay(failures, 10) for _ in range(40)}
        assert all(ceiling / 2 <= delay <= ceiling for delay in delays), (failures, delays)
        assert len(delays) > 1  # jitter: replicas that failed together do not retry together
    below_poll = OperatorSettings(operator_max_backoff_seconds=2)
    assert all(1 <= below_poll.retry_delay(n, 10) <= 2 for n in (1, 5))


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("ARTPULSE_OPERATOR_MAX_BACKOFF_SECONDS", "0"),
        ("ARTPULSE_OPERATOR_REGISTRY_TIMEOUT_SECONDS", "-1"),
        ("ARTPULSE_OPERATOR_WEBHOOK_PORT", "70000"),
    ],
)
def test_operator_settings_out_of_bounds_fail_at_start(
    monkeypatch: pytest.MonkeyPatch, variable: str, value: str
) -> None:
    monkeypatch.setenv(variable, value)
    with pytest.raises(ValidationError, match=variable.removeprefix("ARTPULSE_").lower()):
        OperatorSettings()


def test_crd_manifest_agrees_with_the_operator() -> None:
    crd = yaml.safe_load((Path(__file__).parents[1] / "manifests" / "crd.yaml").read_text())
    names = crd["spec"]["names"]
    assert crd["metadata"]["name"] == f"{c.PLURAL}.{c.GROUP}"
    assert (names["kind"], names["plural"], names["shortNames"]) == (
        c.KIND,
        c.PLURAL,
        [c.SHORT_NAME],
    )
    (version,) = crd["spec"]["versions"]
    assert f"{crd['spec']['group']}/{version['name']}" == c.API_VERSION
    assert version["subresources"] == {"status": {}}
    schema = version["schema"]["openAPIV3Schema"]["properties"]
    assert schema["status"]["properties"]["phase"]["enum"] == list(c.PHASES)
    spec = schema["spec"]["properties"]
    parsed = parse_spec({})
    assert spec["modelName"]["default"] == parsed.model_name
    assert spec["alias"]["default"] == parsed.alias
    assert spec["deployment"]["properties"]["name"]["default"] == parsed.deployment
    assert spec["deployment"]["properties"]["container"]["default"] == parsed.container
    assert spec["pollIntervalSeconds"]["default"] == parsed.poll_seconds
    assert spec["pollIntervalSeconds"]["maximum"] == MAX_POLL_SECONDS
    columns = {col["name"]: col["jsonPath"] for col in version["additionalPrinterColumns"]}
    assert columns["Serving"] == ".status.servingVersion" and columns["Phase"] == ".status.phase"
