"""The promotion gate, promote, rollback and all-or-none alias moves on a real SQLite registry.

Three real trainings are shared by the module: a good model (v1), one trained on the same
images with shuffled labels (v2, worse), and one on v1's images plus new ones (v3, good).
Each test first sets the aliases it starts from, so the tests do not depend on their order.
"""

from __future__ import annotations

import random
import shutil
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest
from click.testing import CliRunner
from mlflow import MlflowClient

from artpulse_contract.constants import (
    ALIAS_CHALLENGER,
    ALIAS_CHAMPION,
    ALIAS_PREVIOUS_CHAMPION,
    LABELS,
    MODEL_NAME,
    PROMOTION_EXPERIMENT,
)
from artpulse_contract.registry.connection import configure_tracking
from artpulse_contract.registry.lookups import registered_aliases
from artpulse_contract.registry.moves import AliasChange, AliasMoveError, apply_alias_changes
from artpulse_contract.settings import ArtPulseSettings
from artpulse_jobs.cli import main
from artpulse_jobs.commands.promote import EXIT_REFUSED
from artpulse_jobs.promotion.promote import PromotionError, promote, rollback
from artpulse_jobs.promotion.rules import GateConfig
from support.cli_json import validated
from support.monitoring import images, module_settings, quick_training

pytestmark = pytest.mark.slow
ALIASES = (ALIAS_CHAMPION, ALIAS_CHALLENGER, ALIAS_PREVIOUS_CHAMPION)


@dataclass
class Registry:
    """The shared registry: a good v1, a worse v2, a good v3, and a clean evaluation folder."""

    settings: ArtPulseSettings
    good: str
    worse: str
    other_good: str
    eval_dir: Path


def shuffled_copy(source: Path, target: Path, seed: int) -> Path:
    """The images of ``source`` filed under random labels: a dataset of wrong labels."""
    rng = random.Random(seed)
    for index, image in enumerate(sorted(source.glob("*/*.png"))):
        folder = target / LABELS[rng.randrange(len(LABELS))]
        folder.mkdir(parents=True, exist_ok=True)
        shutil.copy(image, folder / f"{index:04d}.png")
    return target


@pytest.fixture(scope="module")
def registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Registry]:
    root = tmp_path_factory.mktemp("promotion")
    with module_settings(root) as settings:
        first = images(root, 20, seed=0)
        good = quick_training(settings, first)
        worse = quick_training(settings, shuffled_copy(first, root / "shuffled", seed=5))
        # Like a retrain: the same images plus newly labelled ones.
        other = quick_training(settings, first, [images(root, 10, seed=1)])
        eval_dir = images(root, 8, seed=2)
        yield Registry(settings, good.version, worse.version, other.version, eval_dir)


def set_aliases(registry: Registry, **versions: str | None) -> MlflowClient:
    """Point each alias (``champion=...``, ``previous_champion=...``) at a version, or remove it."""
    configure_tracking(registry.settings)
    client = MlflowClient()
    for alias in ALIASES:
        version = versions.get(alias.replace("-", "_"))
        if version is None:
            if alias in registered_aliases(client, MODEL_NAME):
                client.delete_registered_model_alias(MODEL_NAME, alias)
        else:
            client.set_registered_model_alias(MODEL_NAME, alias, version)
    return client


def tags(client: MlflowClient, version: str) -> dict[str, str]:
    return dict(client.get_model_version(MODEL_NAME, version).tags)


def test_gate_refuses_a_worse_model_and_leaves_aliases(registry: Registry) -> None:
    client = set_aliases(registry, champion=registry.good, challenger=registry.worse)
    before = registered_aliases(client, MODEL_NAME)
    outcome = promote(registry.settings)
    assert not outcome.changed
    assert outcome.decision is not None and not outcome.decision.passed
    assert outcome.decision.champion_macro_f1 is not None
    assert outcome.decision.candidate_macro_f1 < outcome.decision.champion_macro_f1 - 0.02
    assert "champion version" in str(outcome.evaluation_source)
    assert registered_aliases(client, MODEL_NAME) == before
    candidate = tags(client, registry.worse)
    assert candidate["artpulse.gate.decision"] == "refused"
    assert candidate["artpulse.gate.run_id"] == outcome.run_id
    assert tags(client, registry.good)["artpulse.gate.challenged_by"] == registry.worse
    run = client.get_run(str(outcome.run_id))
    assert client.get_experiment(run.info.experiment_id).name == PROMOTION_EXPERIMENT
    assert run.data.metrics["candidate_macro_f1"] == pytest.approx(
        outcome.decision.candidate_macro_f1
    )
    result = CliRunner().invoke(main, ["promote"])
    assert result.exit_code == EXIT_REFUSED, result.output
    assert "gate refused" in result.output
    as_json = CliRunner().invoke(main, ["promote", "--json"])
    assert as_json.exit_code == EXIT_REFUSED and "gate refused" in as_json.stderr
    document = validated(as_json.stdout, "promotion")
    assert (document["action"], document["changed"], document["version"]) == (
        "promote",
        False,
        registry.worse,
    )
    assert document["gate"]["passed"] is False and document["previous"] == registry.good


@pytest.mark.parametrize(
    ("config", "refused_by"),
    [
        (GateConfig(min_macro_f1=0.9, max_regression=1.0), "minimum"),
        (GateConfig(min_macro_f1=0.0, max_regression=0.02), "champion's"),
    ],
    ids=["minimum-alone", "regression-alone"],
)
def test_each_gate_rule_alone_refuses_the_worse_model(
    registry: Registry, config: GateConfig, refused_by: str
) -> None:
    # The other rule is relaxed to let anything through, so only one rule can refuse.
    client = set_aliases(registry, champion=registry.good, challenger=registry.worse)
    before = registered_aliases(client, MODEL_NAME)
    outcome = promote(registry.settings, config=config)
    assert outcome.decision is not None and not outcome.decision.passed
    failed = [reason for reason in outcome.decision.reasons if " < " in reason]
    assert len(failed) == 1 and refused_by in failed[0], outcome.decision.reasons
    assert registered_aliases(client, MODEL_NAME) == before
    params = client.get_run(str(outcome.run_id)).data.params
    assert (params["min_macro_f1"], params["max_regression"]) == (
        str(config.min_macro_f1),
        str(config.max_regression),
    )


def test_the_command_line_thresholds_replace_the_settings(
    registry: Registry, monkeypatch: pytest.MonkeyPatch
) -> None:
    client = set_aliases(registry, champion=registry.good, challenger=registry.worse)
    monkeypatch.setenv("ARTPULSE_GATE_MIN_MACRO_F1", "0.0")
    refused = CliRunner().invoke(main, ["promote"])  # the setting relaxes one rule only
    assert refused.exit_code == EXIT_REFUSED, refused.output
    assert "macro F1" in refused.output and "< champion's" in refused.output
    for usage in (["--max-regression", "-0.5"], ["--min-macro-f1", "1.5"]):
        invalid = CliRunner().invoke(main, ["promote", *usage])
        assert invalid.exit_code == 2 and f"{usage[0]}=" in invalid.output, invalid.output
    passed = CliRunner().invoke(main, ["promote", "--max-regression", "1.0"])
    assert passed.exit_code == 0, passed.output
    assert registered_aliases(client, MODEL_NAME)[ALIAS_CHAMPION] == registry.worse


def test_gate_accepts_a_better_model_on_a_fixed_images_folder(registry: Registry) -> None:
    client = set_aliases(registry, champion=registry.worse, challenger=registry.other_good)
    outcome = promote(registry.settings, eval_dir=registry.eval_dir)
    assert outcome.changed and outcome.decision is not None and outcome.decision.passed
    assert outcome.decision.champion_macro_f1 is not None
    assert outcome.decision.candidate_macro_f1 > outcome.decision.champion_macro_f1
    assert "images folder" in str(outcome.evaluation_source)
    assert registered_aliases(client, MODEL_NAME) == {
        ALIAS_CHAMPION: registry.other_good,
        ALIAS_PREVIOUS_CHAMPION: registry.worse,
    }
    assert tags(client, registry.other_good)["artpulse.gate.decision"] == "passed"
    run = client.get_run(str(outcome.run_id))
    assert run.data.tags["artpulse.aliases_after"].count(registry.other_good) == 1


def test_gate_accepts_an_equally_good_model_on_the_champions_holdout(registry: Registry) -> None:
    set_aliases(registry, champion=registry.good, challenger=registry.other_good)
    result = CliRunner().invoke(main, ["promote"])
    assert result.exit_code == 0, result.output
    assert f"version {registry.other_good} is champion" in result.output
    assert "holdout.npz of champion version" in result.output


def test_force_skips_the_gate_and_records_it(registry: Registry) -> None:
    client = set_aliases(registry, champion=registry.good)
    outcome = promote(registry.settings, version=registry.worse, force=True)
    assert outcome.changed and outcome.forced and outcome.decision is None
    assert registered_aliases(client, MODEL_NAME)[ALIAS_CHAMPION] == registry.worse
    assert tags(client, registry.worse)["artpulse.gate.decision"] == "forced"
    assert client.get_run(str(outcome.run_id)).data.tags["artpulse.forced"] == "True"


def test_rollback_restores_the_previous_champion(registry: Registry) -> None:
    client = set_aliases(registry, champion=registry.other_good, previous_champion=registry.good)
    outcome = rollback(registry.settings, reason="latency regression")
    assert registered_aliases(client, MODEL_NAME) == {ALIAS_CHAMPION: registry.good}
    demoted = tags(client, registry.other_good)
    assert demoted["artpulse.rollback.reason"] == "latency regression"
    assert demoted["artpulse.rollback.run_id"] == outcome.run_id
    result = CliRunner().invoke(main, ["rollback", "--reason", "again"])
    assert result.exit_code == 1
    assert "no 'previous-champion' alias" in result.output
    set_aliases(registry, champion=registry.other_good, previous_champion=registry.good)
    as_json = CliRunner().invoke(main, ["rollback", "--reason", "by script", "--json"])
    assert as_json.exit_code == 0, as_json.output
    document = validated(as_json.stdout, "promotion")
    assert (document["action"], document["version"], document["previous"]) == (
        "rollback",
        registry.good,
        registry.other_good,
    )
    assert document["aliases"] == {ALIAS_CHAMPION: registry.good} and document["gate"] is None


def test_a_failed_alias_write_midway_restores_every_alias(registry: Registry) -> None:
    client = set_aliases(registry, champion=registry.good, challenger=registry.other_good)
    before = registered_aliases(client, MODEL_NAME)
    # A real registry error, not a mock: the second write names a version that does not exist.
    changes = [
        AliasChange(ALIAS_PREVIOUS_CHAMPION, registry.good),
        AliasChange(ALIAS_CHAMPION, "999"),
    ]
    with pytest.raises(AliasMoveError, match="restored") as raised:
        apply_alias_changes(client, MODEL_NAME, changes)
    assert raised.value.restored
    assert registered_aliases(client, MODEL_NAME) == before


def test_promote_errors_name_the_problem(registry: Registry) -> None:
    set_aliases(registry, champion=registry.good)
    with pytest.raises(PromotionError, match="no 'challenger' alias"):
        promote(registry.settings)
    with pytest.raises(PromotionError, match="'42'"):
        promote(registry.settings, version="42")
    assert not promote(registry.settings, version=registry.good).changed
    result = CliRunner().invoke(main, ["promote", "--eval-dir", "/nonexistent/eval"])
    assert result.exit_code == 1 and "no 'challenger' alias" in result.output


@contextmanager
def champion_writes_fail(settings: ArtPulseSettings) -> Iterator[None]:
    """Make the registry database itself refuse any write of the ``champion`` alias.

    Fault injection at the database level (SQLite triggers in the real store), so every line
    of ``promote`` runs for real up to the failing write; dropped again on exit.
    """
    path = settings.state_dir.resolve() / "mlflow.db"
    statements = [
        f"CREATE TRIGGER refuse_champion_{event} BEFORE {event} ON registered_model_aliases "
        f"WHEN NEW.alias = '{ALIAS_CHAMPION}' BEGIN SELECT RAISE(ABORT, 'injected fault'); END"
        for event in ("INSERT", "UPDATE")
    ]
    with sqlite3.connect(path) as connection:
        for statement in statements:
            connection.execute(statement)
    try:
        yield
    finally:
        with sqlite3.connect(path) as connection:
            for event in ("INSERT", "UPDATE"):
                connection.execute(f"DROP TRIGGER refuse_champion_{event}")


def test_a_registry_error_during_promotion_leaves_the_aliases_as_they_were(
    registry: Registry,
) -> None:
    client = set_aliases(registry, champion=registry.good, challenger=registry.other_good)
    before = registered_aliases(client, MODEL_NAME)
    with champion_writes_fail(registry.settings), pytest.raises(AliasMoveError) as raised:
        promote(registry.settings, force=True)
    assert raised.value.restored
    assert "injected fault" in str(raised.value)
    assert registered_aliases(client, MODEL_NAME) == before  # previous-champion undone
    experiment = client.get_experiment_by_name(PROMOTION_EXPERIMENT)
    assert experiment is not None
    runs = client.search_runs(
        [experiment.experiment_id],
        order_by=["attributes.start_time DESC"],
        max_results=1,
    )
    assert runs[0].info.status == "FAILED"
    assert runs[0].data.tags["artpulse.restored"] == "True"
