"""Automated retraining — trigger, train a challenger, compare, promote or keep.

Four months of a churn model's life, each month run through the *same* steps and wiring
(``labs/retraining/steps.py``) that the Prefect flow ``retrain`` runs as tasks, here with plain
function calls so no server is needed:

1. **month 1** — there is no champion yet: train one, promote it;
2. **month 2** — business as usual: no drift, quality holds, few new rows → no retraining;
3. **month 3** — concept drift: customers churn for new reasons, the champion's quality on the
   month's labelled data collapses → retrain (new rows weighted up) → the challenger wins on
   the same holdout by more than the margin → promote;
4. **month 4** — someone forces a retrain on badly labelled data → the challenger is worse →
   the champion stays.

What an interviewer wants to hear: retraining is triggered by evidence, and a retrained model
must *earn* promotion against the current one on the same data; every alias move is audited.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass, replace
from pathlib import Path

from labs.common.catalogue import topic
from labs.common.registry import CHAMPION, AliasMove, read_audit_log
from labs.common.results import Claim, LabResult, artifact_path, claim_metrics
from labs.common.tracking import RunRecord, configure_tracking, log_run_record
from labs.retraining.report import Month, format_months, plot_months, write_months
from labs.retraining.steps import RetrainConfig, Steps, run_retraining

QUESTION = topic("retraining").question
EXPERIMENT = "lab-retraining"


@dataclass(frozen=True)
class RetrainingLabParams:
    """Parameters of the lab (``params.yaml`` → ``retraining_lab``); the thresholds themselves
    come from ``params.yaml`` → ``retraining``, exactly as for the flow."""

    model_name: str = "churn-model-retraining-lab"
    drift_month: int = 3
    bad_label_noise: float = 0.45

    def __post_init__(self) -> None:
        if self.drift_month < 3:
            raise ValueError(f"retraining_lab.drift_month must be >= 3, got {self.drift_month!r}")
        if not 0 < self.bad_label_noise <= 0.5:
            raise ValueError(
                f"retraining_lab.bad_label_noise must be in (0, 0.5], got {self.bad_label_noise!r}"
            )


def run(
    params: RetrainingLabParams,
    out_dir: Path,
    echo: Callable[[str], None] = lambda _: None,
    *,
    steps: Steps | None = None,
) -> LabResult:
    """Replay four months through the retraining pipeline; return the measured claims.

    ``steps`` are the pipeline's steps (the real ones by default); the lab's counterfactuals
    (``labs/retraining/counterfactuals.py``) hand it a broken trigger, split or promotion.
    """
    out_dir.mkdir(parents=True, exist_ok=True)
    audit_log = out_dir / "audit.jsonl"
    _reset(params.model_name, audit_log)  # the lab owns this model: every run starts afresh

    base = RetrainConfig.from_params(
        model_name=params.model_name, experiment=EXPERIMENT, audit_log=str(audit_log)
    )
    drift = base.stream.get(params.drift_month) or {"concept_drift": 0.8}
    stream = {1: {}, 2: {}, params.drift_month: drift, params.drift_month + 1: drift}
    base = replace(base, stream=stream)
    plan = [
        (1, "no champion yet", {}),
        (2, "business as usual", {}),
        (params.drift_month, "concept drift hits", {}),
        (
            params.drift_month + 1,
            "forced retrain on badly labelled data",
            {"force": True, "label_noise": params.bad_label_noise},
        ),
    ]
    months: list[Month] = []
    for month, story, knobs in plan:
        echo(f"Month {month} — {story} …")
        before = _champion_version(params.model_name)
        outcome = run_retraining(
            replace(base, month=month, **knobs), steps, log=lambda m: echo(f"    {m}")
        )
        months.append(
            Month(
                month=month,
                story=story,
                action=outcome.action,
                reasons=outcome.reasons,
                champion_before=before,
                champion_after=_champion_version(params.model_name),
                challenger=outcome.challenger_version,
                champion_auc_on_batch=outcome.decision.get("champion_roc_auc_on_batch"),
                champion_score=outcome.champion_score,
                challenger_score=outcome.challenger_score,
                holdout_rows=outcome.holdout_rows,
                holdout_seen_in_training=outcome.holdout_seen_in_training,
            )
        )

    moves = read_audit_log(audit_log)
    claims = make_claims(base, months, moves)
    table = write_months(months, out_dir / "months.csv")
    plot = plot_months(months, base.quality_threshold, out_dir / "champion_by_month.png")
    echo("")
    echo(format_months(months))
    echo("")
    run_id = log_run_record(
        EXPERIMENT,
        RunRecord(
            name="retraining-lab",
            params=asdict(params) | {"stream": str(stream)},
            metrics=claim_metrics(claims),
            artifacts=[str(plot), str(table), str(audit_log)],
        ),
    )
    return LabResult(
        lab="retraining",
        question=QUESTION,
        claims=claims,
        artifacts=[artifact_path(p) for p in (plot, table, audit_log)],
        mlflow={"experiment": EXPERIMENT, "run_id": run_id},
    )


def make_claims(config: RetrainConfig, months: list[Month], moves: list[AliasMove]) -> list[Claim]:
    """The interview answer's claims, decided by the months' numbers."""
    first, normal, drift, bad = months
    champion_moves = [
        (m.action, m.from_version, m.to_version) for m in moves if m.alias == CHAMPION
    ]
    return [
        Claim(
            "first_champion_promoted",
            "With no champion, the first trained model above the floor becomes champion.",
            passed=first.action == "promoted" and first.champion_after == first.challenger,
            measured={
                "challenger_score": first.challenger_score,
                "floor": config.absolute_floor,
                "action": first.action,
            },
        ),
        Claim(
            "normal_month_no_retraining",
            "A normal month fires no trigger: nothing is trained, the champion stays.",
            passed=normal.action == "skipped"
            and normal.challenger is None
            and normal.champion_after == normal.champion_before,
            measured={
                "champion_auc_on_batch": normal.champion_auc_on_batch,
                "quality_threshold": config.quality_threshold,
                "reasons": normal.reasons,
                "action": normal.action,
            },
        ),
        Claim(
            "concept_drift_triggers_retraining",
            "Under concept drift the champion's quality on labelled data falls below the "
            "threshold, which triggers retraining.",
            passed=drift.action != "skipped"
            and drift.champion_auc_on_batch is not None
            and drift.champion_auc_on_batch < config.quality_threshold
            and any(r.startswith("quality:") for r in drift.reasons),
            measured={
                "champion_auc_on_batch": drift.champion_auc_on_batch,
                "quality_threshold": config.quality_threshold,
                "action": drift.action,
            },
        ),
        Claim(
            "better_challenger_promoted",
            "The challenger beats the champion by the margin on the same holdout — rows of the "
            "new batch it never trained on — and clears the floor, so `champion` moves to it in "
            "one step; the old one stays `previous`.",
            passed=drift.action == "promoted"
            and drift.holdout_rows > 0
            and drift.holdout_seen_in_training == 0
            and drift.challenger_score >= drift.champion_score + config.margin
            and drift.challenger_score >= config.absolute_floor
            and drift.champion_after == drift.challenger != drift.champion_before,
            measured={
                "champion_score": drift.champion_score,
                "challenger_score": drift.challenger_score,
                "margin": config.margin,
                "floor": config.absolute_floor,
                "holdout_rows": drift.holdout_rows,
                "holdout_rows_seen_in_training": drift.holdout_seen_in_training,
            },
        ),
        Claim(
            "worse_challenger_kept",
            "A worse challenger (trained on badly labelled data) is not promoted: the champion "
            "stays.",
            passed=bad.action == "kept"
            and bad.champion_before is not None
            and bad.champion_after == bad.champion_before
            and bad.challenger_score
            < max(bad.champion_score + config.margin, config.absolute_floor),
            measured={
                "champion_score": bad.champion_score,
                "challenger_score": bad.challenger_score,
                "margin": config.margin,
                "floor": config.absolute_floor,
                "action": bad.action,
            },
        ),
        Claim(
            "every_move_audited",
            "Every champion move is in the audit log, and only those: two promotions.",
            passed=champion_moves
            == [
                ("promote", None, first.challenger),
                ("promote", first.challenger, drift.challenger),
            ],
            measured={"champion_moves": len(champion_moves), "audit_lines": len(moves)},
        ),
    ]


# --- helpers ------------------------------------------------------------------------------


def _reset(model_name: str, audit_log: Path) -> None:
    import mlflow

    from labs.common.registry import reset_lab_model

    configure_tracking()
    reset_lab_model(
        mlflow.MlflowClient(), model_name, owner=EXPERIMENT, setting="retraining_lab.model_name"
    )
    audit_log.unlink(missing_ok=True)


def _champion_version(model_name: str) -> str | None:
    import mlflow

    from labs.common.registry import alias_version

    return alias_version(mlflow.MlflowClient(), model_name, CHAMPION)  # _reset created the model
