"""CI/CD for a model: a gate that stops a worse model, staging, and an audited production step.

A pipeline that only runs unit tests would merge every change below: they all train, they all
predict. What stops them is a *model gate* between training and the registry:

1. **Absolute floors** on a holdout (ROC-AUC, accuracy): the model is good enough at all.
2. **Beat the champion by a margin** set from measured noise: the champion's recipe retrained
   on fresh samples moves ROC-AUC by σ; a candidate must gain at least ``noise_sigmas × σ``,
   or a no-op change that got lucky would be deployed.
3. **The offline score must survive a time split**: a feature known only in hindsight looks
   excellent on a random split of the training table and is useless when production scores.

Passing candidates are registered and get the ``staging`` alias with their lineage (commit,
data md5, lock hashes); ``production`` moves only in a separate, audited step that refuses
anything the gate did not stage. A data-only change (a new DVC data version changes only
``dvc.lock``, committed for real in a scratch git repository) triggers the workflow, and the
gate runs again on a model trained on the new data. The thresholds are MLflow's
``MetricThreshold`` objects, validated by ``mlflow.validate_evaluation_results``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import asdict
from pathlib import Path
from typing import Any

import pandas as pd

from labs.cicd.changes import (
    CHAMPION_RECIPE,
    Trained,
    as_scored_in_production,
    code_changes,
    train_and_score,
    with_hindsight_calls,
)
from labs.cicd.claims import make_claims
from labs.cicd.gate import (
    PRODUCTION,
    STAGING,
    GateDecision,
    GateThresholds,
    NotStagedError,
    noise_margin,
    promote_to_production,
    run_gate,
    stage_version,
)
from labs.cicd.params import CicdParams
from labs.cicd.provenance import data_change, lineage_tags, workflow_trigger
from labs.cicd.report import format_table, plot_gate, write_table
from labs.common.catalogue import topic
from labs.common.data import make_churn_data
from labs.common.results import LabResult, artifact_path, claim_metrics

QUESTION = topic("cicd").question
EXPERIMENT = topic("cicd").experiment
OWNER = "lab-cicd"

__all__ = ["CicdParams", "run"]


def holdout_scores(trained: Trained) -> dict[str, float]:
    """What the gate reads: the time-split holdout scores and the offline–holdout gap."""
    return trained.gate_metrics


def run(
    params: CicdParams,
    out_dir: Path,
    echo: Callable[[str], None] = lambda _: None,
    *,
    margin_rule: Callable[[list[float], float], tuple[float, float]] = noise_margin,
    gate_scores: Callable[[Trained], dict[str, float]] = holdout_scores,
    trigger: Callable[[Iterable[str]], dict[str, bool]] = workflow_trigger,
    promote: Callable[..., Any] = promote_to_production,
) -> LabResult:
    """Gate four code changes and one data change; stage the good one; promote it, audited.

    The keyword-only arguments are the parts the lab demonstrates, replaceable by broken ones
    (``labs/cicd/counterfactuals.py``): how the margin comes from seed noise, which scores the
    gate reads, which changed files run the workflow, and the step that moves production.
    """
    import mlflow

    from labs.common.registration import register_version
    from labs.common.registry import reset_lab_model
    from labs.common.tracking import audit_log_path, start_run

    out_dir.mkdir(parents=True, exist_ok=True)
    p = params
    fit = {"C": p.C, "offline_fraction": p.offline_fraction, "seed": p.seed}

    # Data v1: the training months as the warehouse holds them (in hindsight), and the next
    # month as production scores it — the gate's time-split holdout.
    table = _training_months(p, p.train_rows, p.seed)
    holdout = as_scored_in_production(make_churn_data(p.holdout_rows, seed=p.seed + 1))
    data_v1 = out_dir / "data" / "train-v1.csv"
    data_v1.parent.mkdir(exist_ok=True)
    table.to_csv(data_v1, index=False)

    echo(f"Seed noise: the champion's recipe retrained on {p.noise_seeds} fresh samples …")
    champion = train_and_score(CHAMPION_RECIPE, table, holdout, **fit)
    seed_scores = [
        train_and_score(
            CHAMPION_RECIPE,
            _training_months(p, p.train_rows, p.seed * 1000 + s + 1),
            holdout,
            **fit,
        ).holdout["roc_auc"]
        for s in range(p.noise_seeds)
    ]
    sigma, margin = margin_rule(seed_scores, p.noise_sigmas)
    thresholds = GateThresholds(p.min_roc_auc, p.min_accuracy, p.max_offline_gap, margin)
    echo(f"  σ(ROC-AUC) = {sigma:.4f} → margin {margin:.4f} ({p.noise_sigmas:g}σ)")
    echo(f"No-op changes: the gate on {p.noop_pairs} pairs of retrains on other fresh samples …")
    noise = _noop_study(p, seed_scores, sigma, margin, thresholds, holdout, gate_scores)

    client = mlflow.MlflowClient()
    audit = audit_log_path()
    with start_run(EXPERIMENT, "cicd-lab", asdict(p)) as mlflow_run:
        reset_lab_model(client, p.model_name, OWNER, "cicd.model_name")
        tags = lineage_tags(data_v1)

        def register(candidate: str, extra: dict[str, str]) -> str:
            version, _ = register_version(
                client,
                p.model_name,
                trained[candidate].model,
                experiment=EXPERIMENT,
                run_id=mlflow_run.info.run_id,
                tags={**extra, "candidate": candidate, "recipe": trained[candidate].recipe.name},
            )
            return version

        # The production model got there the same way: gate (no champion yet) → staging → an
        # audited promotion.
        echo("Bootstrapping production: the champion passes the gate's floors, is staged, promoted")
        trained: dict[str, Trained] = {"champion": champion}
        # (It passed the gate of its day, on its own holdout scores.)
        first = run_gate("champion", champion.gate_metrics, None, thresholds)
        v1 = register("champion", tags)
        stage_version(client, p.model_name, v1, first, audit_log=audit)
        promote_to_production(client, p.model_name, v1, reason="bootstrap", audit_log=audit)

        decisions: dict[str, GateDecision] = {}
        staged: dict[str, str] = {}
        for name, recipe in code_changes(p.bug_divisor).items():
            trained[name] = train_and_score(recipe, table, holdout, **fit)
            decisions[name] = run_gate(
                name, gate_scores(trained[name]), gate_scores(champion), thresholds
            )
            echo(f"Pull request {name} ({recipe.description}): gate {decisions[name].reason}")
            if decisions[name].passed:
                staged[name] = register(name, tags)
                stage_version(client, p.model_name, staged[name], decisions[name], audit_log=audit)
                echo(f"  registered v{staged[name]} → alias {STAGING}")

        # A data-only change: a newer month is appended, the code stays. Committed in a
        # scratch repository, git sees only dvc.lock change; the workflow's trigger decides
        # whether the pipeline (retrain on the data dvc.lock pins, then the gate) runs.
        echo("Data-only change: data v2 (a newer month appended), the champion's code …")
        newer = _training_months(p, p.new_data_rows, p.seed + 2)
        table_v2 = pd.concat([table, newer], ignore_index=True)
        change = data_change(out_dir / "repo", table, table_v2, trigger)
        echo(f"  git: changed {change['changed_files']}; workflow runs: {change['triggers']}")
        if change["data_file"] is not None:
            pinned = pd.read_csv(change["data_file"])
            trained["new_data"] = train_and_score(CHAMPION_RECIPE, pinned, holdout, **fit)
            decisions["new_data"] = run_gate(
                "new_data", gate_scores(trained["new_data"]), gate_scores(champion), thresholds
            )
            echo(f"  gate {decisions['new_data'].reason}")
            if decisions["new_data"].passed:
                staged["new_data"] = register("new_data", lineage_tags(change["data_file"]))
                stage_version(
                    client, p.model_name, staged["new_data"], decisions["new_data"], audit_log=audit
                )

        echo("Promotion: a hand-registered (ungated) version, then the staged one …")
        release = _release(client, p, register, audit, promote)

        registered = {
            mv.tags.get("candidate"): mv
            for mv in client.search_model_versions(f"name='{p.model_name}'")
        }
        claims = make_claims(
            p, noise, champion, trained, decisions, staged, registered, tags, change, release
        )
        echo("")
        echo(format_table(trained, decisions, champion, margin))
        files = [
            plot_gate(trained, decisions, champion, thresholds, out_dir / "gate.png"),
            write_table(trained, decisions, champion, margin, out_dir / "gate.md"),
        ]
        mlflow.log_metrics(claim_metrics(claims))
        for f in files:
            mlflow.log_artifact(str(f))
        run_id = mlflow_run.info.run_id

    return LabResult(
        lab="cicd",
        question=QUESTION,
        claims=claims,
        artifacts=[artifact_path(f) for f in files],
        mlflow={"experiment": EXPERIMENT, "run_id": run_id, "registered_model": p.model_name},
    )


def _training_months(p: CicdParams, rows: int, seed: int) -> pd.DataFrame:
    frame = make_churn_data(rows, seed=seed)
    return with_hindsight_calls(frame, seed, p.retention_calls_churned, p.retention_calls_stayed)


def _noop_study(
    p: CicdParams,
    seed_scores: list[float],
    sigma: float,
    margin: float,
    thresholds: GateThresholds,
    holdout: pd.DataFrame,
    gate_scores: Callable[[Trained], dict[str, float]],
) -> dict[str, Any]:
    """The gate on no-op changes: ``noop_pairs`` independent pairs of the champion's recipe,
    each retrained on its own fresh sample (seeds σ was *not* measured on); one retrain plays
    the champion, the other the candidate. How often does the gate promote the candidate?"""
    fit = {"C": p.C, "offline_fraction": p.offline_fraction, "seed": p.seed}
    passed = 0
    for pair in range(p.noop_pairs):
        champion, candidate = (
            train_and_score(
                CHAMPION_RECIPE,
                _training_months(p, p.train_rows, p.seed * 1000 + 500 + 2 * pair + side),
                holdout,
                **fit,
            )
            for side in (0, 1)
        )
        decision = run_gate("no-op", gate_scores(candidate), gate_scores(champion), thresholds)
        passed += decision.passed
    return {
        "seeds": len(seed_scores),
        "roc_auc_min": min(seed_scores),
        "roc_auc_max": max(seed_scores),
        "sigma": sigma,
        "noise_sigmas": p.noise_sigmas,
        "margin": margin,
        "noop_pairs": p.noop_pairs,
        "noop_promoted": passed,
    }


def _release(
    client: Any,
    p: CicdParams,
    register: Callable[[str, dict[str, str]], str],
    audit: Path,
    promote: Callable[..., Any],
) -> dict[str, Any]:
    """Production is a separate step: an ungated version is refused, the staged one moves."""
    from labs.common.registry import alias_version

    # Someone registers the buggy model by hand, bypassing the gate, and asks for production.
    by_hand = register("preprocessing_bug", {"registered_by": "hand"})
    before = alias_version(client, p.model_name, PRODUCTION)
    refusal = ""
    try:
        promote(client, p.model_name, by_hand, reason="by hand", audit_log=audit)
    except NotStagedError as err:
        refusal = str(err)
    after_refusal = alias_version(client, p.model_name, PRODUCTION)

    staged = alias_version(client, p.model_name, STAGING)
    move = None
    if staged is not None:
        move = promote(
            client, p.model_name, staged, reason="approved: release review", audit_log=audit
        )
    promoted = alias_version(client, p.model_name, PRODUCTION)
    return {
        "by_hand_version": by_hand,
        "refusal": refusal,
        "production_before": before,
        "production_after_refusal": after_refusal,
        "staged_version": staged,
        "production_after": promoted,
        "staging_after": alias_version(client, p.model_name, STAGING),
        "previous_tag": client.get_model_version(p.model_name, promoted).tags.get(
            "previous_production"
        )
        if promoted
        else None,
        "audit": None if move is None else asdict(move),
    }
