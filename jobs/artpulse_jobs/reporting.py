"""Plain-text reports of what a job did: the one home of the commands' and the demo's prose
(``documents`` holds the JSON of ``--json``).

Every function returns text (no printing), so commands, the demo and tests share it.
"""

from __future__ import annotations

import sys
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from artpulse_contract.constants import LABELS, PROMOTION_EXPERIMENT
from artpulse_contract.registry import tags

if TYPE_CHECKING:  # only annotations: each command imports just what it reports on
    from artpulse_contract.registry.lookups import VersionSummary
    from artpulse_jobs.monitoring.drift import DriftResult
    from artpulse_jobs.promotion.promote import PromotionOutcome
    from artpulse_jobs.serving.client import Prediction
    from artpulse_jobs.training.train import TrainResult


def on_terminal() -> bool:
    """Whether progress bars belong on stderr: only a terminal, never a log or a pipe."""
    return sys.stderr.isatty()


def _score(value: float | None) -> str:
    return "-" if value is None else f"{value:.4f}"


def table(rows: Sequence[Sequence[str]]) -> str:
    """Left-aligned columns two spaces apart, trailing spaces removed."""
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    return "\n".join(
        "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip()
        for row in rows
    )


def format_training(result: TrainResult) -> str:
    """The candidates table, the chosen model, the registered version and its aliases."""
    # Imported here: scikit-learn costs the other commands most of a second; the callers of
    # this function have trained, so it is loaded already.
    from artpulse_jobs.training.candidates import TIE_TOLERANCE

    rows = [("candidate", "macro_f1", "accuracy", "cv_f1", "eval_f1", "fit_s", "infer_ms", "")]
    for item in result.candidates:
        rows.append(
            (
                item.name,
                _score(item.holdout.macro_f1),
                _score(item.holdout.accuracy),
                _score(item.cv_macro_f1),
                _score(item.external.macro_f1 if item.external else None),
                f"{item.fit_seconds:.2f}",
                f"{item.inference_ms:.3f}",
                "<- chosen" if item.name == result.best_candidate else "",
            )
        )
    dataset = result.dataset
    return "\n".join(
        [
            table(rows),
            "",
            f"dataset: {dataset['path']} ({dataset['n_images']} images, "
            f"hash {dataset['content_hash'][:12]}, {len(dataset['skipped'])} skipped)",
            f"chosen: {result.best_candidate} (best held-out macro F1; ties within "
            f"{TIE_TOLERANCE} go to the cheapest at inference)",
            f"registered: {result.model_uri}  aliases: {', '.join(result.aliases)}",
            f"run: {result.run_id}",
        ]
    )


def format_versions(versions: Sequence[VersionSummary]) -> str:
    """A table: version, aliases, model family, scores, dataset hash, created."""
    header = ("version", "aliases", "candidate", "macro_f1", "accuracy", "eval_f1", "dataset")
    rows = [(*header, "created (UTC)")]
    for item in versions:
        rows.append(
            (
                item.version,
                ",".join(item.aliases) or "-",
                item.tags.get(tags.CANDIDATE, "-"),
                _score(item.metrics.get("macro_f1")),
                _score(item.metrics.get("accuracy")),
                _score(item.metrics.get("eval_macro_f1")),
                item.tags.get(tags.DATASET_HASH, "-")[:12],
                item.created.strftime("%Y-%m-%d %H:%M:%S"),
            )
        )
    return table(rows)


def describe_window(window: Mapping[str, Any]) -> str:
    """A drift window in words: its time range or newest events, and whose events."""
    since, until, last_n = window.get("since"), window.get("until"), window.get("last_n")
    parts = [f"from {since or 'the first event'} until {until or 'now'}"]
    if last_n:
        parts.append(f"newest {last_n} events")
    version = window.get("model_version")
    parts.append("events of every version" if version == "all" else f"events of version {version}")
    return ", ".join(parts)


def format_counts(counts: Mapping[str, int]) -> str:
    """``neo-pop 100, vibrant 100``: counts by name, in name order."""
    return ", ".join(f"{name} {count}" for name, count in sorted(counts.items())) or "none"


def describe_drift(result: DriftResult) -> str:
    """Verdict, per-feature reasons and where the reports are."""
    report = result.report
    lines = [
        f"drift check of {report['model']['name']} version {report['model']['version']}: "
        f"{report['summary']}",
        f"window: {describe_window(report['window'])}",
    ]
    for name, feature in report["features"].items():
        mark = "DRIFT" if feature["drifted"] else "ok"
        lines.append(f"  {name:<9} {mark:<5} {'; '.join(feature['reasons'])}")
    if report["labels"]:
        mark = "DRIFT" if report["labels"]["drifted"] else "ok"
        lines.append(f"  {'labels':<9} {mark:<5} {'; '.join(report['labels']['reasons'])}")
    lines.append(
        f"report: {result.json_path} and {result.html_path.name} (MLflow run {result.run_id})"
    )
    return "\n".join(lines)


def describe_promotion(outcome: PromotionOutcome) -> str:
    """What was decided and why, the scores, the evaluation set and the MLflow run."""
    lines = [outcome.message]
    decision = outcome.decision
    if decision is not None:
        champion = decision.champion_macro_f1
        lines.append(
            f"gate: candidate {outcome.version} macro F1 {decision.candidate_macro_f1:.4f}, "
            f"champion {outcome.previous or 'none'} "
            f"{'-' if champion is None else f'{champion:.4f}'} on {outcome.evaluation_source}"
        )
    if outcome.aliases:
        aliases = ", ".join(f"{k}={v}" for k, v in sorted(outcome.aliases.items()))
        lines.append(f"aliases now: {aliases}")
    if outcome.run_id:
        lines.append(f"logged as MLflow run {outcome.run_id} (experiment '{PROMOTION_EXPERIMENT}')")
    return "\n".join(lines)


def format_prediction(prediction: Prediction, names: Sequence[str]) -> str:
    """The answering version, then one row per input: its name, label and probabilities."""
    header = "  ".join(f"{label:>10}" for label in LABELS)
    lines = [
        f"model {prediction.model_name} version {prediction.model_version}",
        f"{'input':<30} {'label':<11} {header}",
    ]
    for name, label, row in zip(names, prediction.labels, prediction.probabilities, strict=True):
        values = "  ".join(f"{value:>10.3f}" for value in row)
        lines.append(f"{name[-30:]:<30} {label:<11} {values}")
    return "\n".join(lines)
