"""The retraining lab's counterfactuals: one broken step of the retraining pipeline, run through
the same wiring (:func:`~labs.retraining.steps.run_retraining`) the lab and the Prefect flow
use (``python -m labs.retraining --audit``).

Each is a module-level function with the signature of the step it replaces; it calls the real
step wherever the fault is not, so only the named fault differs.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import pandas as pd

from labs.common.counterfactuals import Counterfactual, LabCounterfactuals
from labs.retraining.lab import RetrainingLabParams, run
from labs.retraining.outcome import Champion, Decision
from labs.retraining.steps import RetrainConfig, Steps, decide, promote_or_keep


def decide_without_quality(
    batch: pd.DataFrame, reference: pd.DataFrame, champion: Champion, config: RetrainConfig
) -> Decision:
    """The trigger watches drift, volume and force, not the champion's quality on the
    labelled batch (it is still measured and logged, just never compared)."""
    return decide(batch, reference, champion, replace(config, quality_threshold=0.0))


def decide_on_schedule(
    batch: pd.DataFrame, reference: pd.DataFrame, champion: Champion, config: RetrainConfig
) -> Decision:
    """Retrain every month, evidence or not (the triggers are computed, then overruled)."""
    decision = decide(batch, reference, champion, config)
    if decision.retrain:
        return decision
    return replace(decision, retrain=True, reasons=["schedule: retrain every month"])


def split_with_overlap(
    batch: pd.DataFrame, config: RetrainConfig
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Train on the whole new batch and 'hold out' a sample of it: the challenger is scored on
    rows it was trained on."""
    holdout = batch.sample(frac=config.holdout_fraction, random_state=config.seed)
    return batch, holdout


def promote_without_gate(
    champion: Champion,
    challenger_version: str,
    champion_score: float | None,
    challenger_score: float,
    config: RetrainConfig,
) -> tuple[str, str, str | None]:
    """The newer model wins: every challenger is promoted (through the real, audited move), its
    score compared with neither the champion's plus the margin nor the floor."""
    ungated = replace(config, absolute_floor=0.0)
    return promote_or_keep(champion, challenger_version, None, challenger_score, ungated)


def promote_missing_champion_unbeatable(
    champion: Champion,
    challenger_version: str,
    champion_score: float | None,
    challenger_score: float,
    config: RetrainConfig,
) -> tuple[str, str, str | None]:
    """A missing champion scores 1.0 (a default meant to be 'safe'), so the first model can
    never beat it."""
    baseline = 1.0 if champion_score is None else champion_score
    return promote_or_keep(champion, challenger_version, baseline, challenger_score, config)


def promote_unaudited(
    champion: Champion,
    challenger_version: str,
    champion_score: float | None,
    challenger_score: float,
    config: RetrainConfig,
) -> tuple[str, str, str | None]:
    """Same gates, but the winning challenger gets ``champion`` through MLflow's own alias call:
    no lock, no ``previous``, no audit line."""
    floor_ok = challenger_score >= config.absolute_floor
    beats = champion_score is None or challenger_score >= champion_score + config.margin
    if not (floor_ok and beats):
        scores = (champion_score, challenger_score)
        return promote_or_keep(champion, challenger_version, *scores, config)
    import mlflow

    from labs.common.registry import CHAMPION
    from labs.common.tracking import configure_tracking

    configure_tracking()
    client = mlflow.MlflowClient()
    client.set_registered_model_alias(config.model_name, CHAMPION, challenger_version)
    return "promoted", f"challenger {challenger_score:.3f} promoted", challenger_version


def _steps(**broken: Any) -> Steps:
    return Steps(**broken)


COUNTERFACTUALS = LabCounterfactuals(
    "retraining",
    "retraining_lab",
    RetrainingLabParams,
    run,
    (
        Counterfactual(
            "missing-champion-unbeatable",
            "no champion counts as a perfect one",
            ("first_champion_promoted",),
            "When there is no champion yet, the comparison uses a default score of 1.0 for it, "
            "so the first model is never promoted and the registry stays without a champion.",
            components={"steps": _steps(promote_or_keep=promote_missing_champion_unbeatable)},
        ),
        Counterfactual(
            "retrain-on-schedule",
            "retrain every month, whatever the evidence",
            ("normal_month_no_retraining",),
            "The triggers are computed and then overruled by a monthly schedule: a normal month "
            "trains (and may ship) a model nothing asked for.",
            components={"steps": _steps(decide=decide_on_schedule)},
        ),
        Counterfactual(
            "trigger-ignores-quality",
            "the trigger watches drift and volume only",
            ("concept_drift_triggers_retraining",),
            "The champion's quality on the labelled batch is measured but not a trigger: concept "
            "drift leaves the inputs alone, so nothing fires while the model fails.",
            components={"steps": _steps(decide=decide_without_quality)},
        ),
        Counterfactual(
            "holdout-overlaps-training",
            "the challenger is scored on rows it trained on",
            ("better_challenger_promoted",),
            "The challenger trains on the whole new batch and is scored on a sample of it: its "
            "holdout score is an in-sample score, not evidence that it is better.",
            components={"steps": _steps(split_batch=split_with_overlap)},
        ),
        Counterfactual(
            "no-promotion-gate",
            "the newer model wins",
            ("worse_challenger_kept",),
            "Promotion has no gate: every retrained model replaces the champion, never compared "
            "with it on the same holdout (no margin) nor held to the floor.",
            components={"steps": _steps(promote_or_keep=promote_without_gate)},
        ),
        Counterfactual(
            "unaudited-alias-move",
            "champion moved without the audited promote",
            ("every_move_audited",),
            "The winning challenger gets the alias through MLflow's own call: production "
            "changes, and the audit log cannot say when, from which version, or why.",
            components={"steps": _steps(promote_or_keep=promote_unaudited)},
        ),
    ),
    audit_params={"model_name": "churn-model-retraining-audit"},
)
