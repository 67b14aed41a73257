"""The retraining steps: trigger → validate → train a challenger → compare → promote or keep.

Each step is a small, plain function of a :class:`~labs.retraining.config.RetrainConfig`;
:func:`run_retraining` wires them together into an
:class:`~labs.retraining.outcome.Outcome`. The lab
calls that wiring with the plain functions (no server), and the Prefect flow ``retrain``
(``pipelines/retrain.py``) calls the very same wiring with each step wrapped as a task. Nothing
here imports Prefect.

Why the champion is only replaced when the challenger is *better by a margin* and *above a
floor*, scored on the *same* holdout: a retrained model is not automatically a better one —
retraining on a bad batch, or on noise, must not reach production.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from labs.common.data import FEATURES, TARGET, make_churn_data
from labs.common.model import TrainParams, evaluate_model, train_model
from labs.common.params import params_for
from labs.common.paths import resolve
from labs.common.registry import PREVIOUS  # the replaced champion: a one-step rollback
from labs.common.schema import InvalidBatchError, quarantine, validate_batch
from labs.retraining.config import RetrainConfig
from labs.retraining.outcome import Champion, Decision, Outcome, score_text

# --- the steps ------------------------------------------------------------------------------


def load_batch(config: RetrainConfig) -> pd.DataFrame:
    """The new labelled batch: a CSV file, or month ``config.month`` of the simulated stream."""
    if config.batch_path:
        path = resolve(config.batch_path)
        if not path.exists():
            raise FileNotFoundError(f"batch file {path} does not exist")
        return pd.read_csv(path)
    knobs = config.stream.get(config.month, {})
    return make_churn_data(config.rows_per_month, seed=config.seed * 100 + config.month, **knobs)


def check_batch(batch: pd.DataFrame, config: RetrainConfig) -> int:
    """Validate the batch; an invalid one is quarantined (moved, never dropped) and fails."""
    report = validate_batch(batch)
    if report.valid:
        return report.rows
    name = Path(config.batch_path).stem if config.batch_path else f"month-{config.month}"
    source = resolve(config.batch_path) if config.batch_path else None
    kept = quarantine(batch, report.reasons, resolve(config.quarantine_dir), name, source)
    raise InvalidBatchError(list(report.reasons), kept)


def load_reference(config: RetrainConfig) -> pd.DataFrame:
    """The data the champion was trained on (the DVC pipeline's ``train.csv``)."""
    path = resolve(config.reference_path)
    if not path.exists():
        raise FileNotFoundError(f"reference data {path} is missing: run `make setup` (dvc repro)")
    return pd.read_csv(path)


def load_champion(config: RetrainConfig) -> Champion:
    """The current ``champion`` of the model, or an empty one if none is set yet."""
    import mlflow
    from mlflow.exceptions import MlflowException

    from labs.common.registry import CHAMPION, alias_version
    from labs.common.tracking import configure_tracking, load_sklearn_model

    configure_tracking()
    try:
        version = alias_version(mlflow.MlflowClient(), config.model_name, CHAMPION)
    except MlflowException as err:
        if err.error_code != "RESOURCE_DOES_NOT_EXIST":  # no such model yet: no champion
            raise
        version = None
    if version is None:
        return Champion(version=None, model=None)
    model = load_sklearn_model(f"models:/{config.model_name}/{version}")
    return Champion(version=version, model=model)


def decide(
    batch: pd.DataFrame, reference: pd.DataFrame, champion: Champion, config: RetrainConfig
) -> Decision:
    """Every trigger, checked and logged: drift, quality on labelled data, volume, force."""
    from labs.common.drift import detect_drift

    drift = detect_drift(reference[list(FEATURES)], batch[list(FEATURES)])
    auc = None if champion.model is None else evaluate_model(champion.model, batch)["roc_auc"]
    reasons = []
    if drift.drift_share >= config.drift_share_threshold:
        reasons.append(
            f"drift: {drift.drift_share:.2f} of features drifted "
            f"({', '.join(drift.drifted_features)}) >= {config.drift_share_threshold}"
        )
    if auc is None:
        reasons.append("no champion yet")
    elif auc < config.quality_threshold:
        reasons.append(
            f"quality: champion ROC-AUC {auc:.3f} on the labelled batch "
            f"< {config.quality_threshold}"
        )
    if len(batch) >= config.min_new_rows:
        reasons.append(f"volume: {len(batch)} new rows >= {config.min_new_rows}")
    if config.force:
        reasons.append("forced")
    return Decision(
        retrain=bool(reasons),
        reasons=reasons or ["no trigger: no drift, quality holds, few new rows"],
        drift_share=drift.drift_share,
        drifted_features=drift.drifted_features,
        champion_roc_auc_on_batch=auc,
        new_rows=len(batch),
    )


def split_batch(batch: pd.DataFrame, config: RetrainConfig) -> tuple[pd.DataFrame, pd.DataFrame]:
    """A fixed (seeded, stratified) holdout of the new batch: both models are scored on it."""
    from sklearn.model_selection import train_test_split

    train, holdout = train_test_split(
        batch,
        test_size=config.holdout_fraction,
        random_state=config.seed,
        stratify=batch[TARGET],
    )
    return train, holdout


def train_challenger(reference: pd.DataFrame, recent: pd.DataFrame, config: RetrainConfig) -> Any:
    """The DVC ``train`` stage's code and params, on reference + new rows (new ones weighted:
    under concept drift the old rows teach the old rules)."""
    recent = recent.copy()
    if config.label_noise > 0:  # a deliberately worse challenger, for demonstrations
        rng = np.random.default_rng(config.seed)
        flip = rng.random(len(recent)) < config.label_noise * 2  # re-draw 2p → flip p
        recent.loc[flip, TARGET] = rng.integers(0, 2, int(flip.sum()))
    frame = pd.concat([reference, recent], ignore_index=True)
    weights = np.r_[np.ones(len(reference)), np.full(len(recent), config.recent_weight)]
    return train_model(frame, params_for(TrainParams, "train"), sample_weight=weights)


def score(model: Any, holdout: pd.DataFrame) -> float:
    """ROC-AUC on the holdout (the comparison metric)."""
    return evaluate_model(model, holdout)["roc_auc"]


def register_challenger(model: Any, config: RetrainConfig, run_id: str) -> str:
    """Register the challenger (alias ``challenger``), find-or-register by the sha256 of its
    bytes: a retry finds the version already registered instead of adding a second one."""
    import mlflow

    from labs.common.registration import register_version
    from labs.common.registry import CHALLENGER, registry_lock, set_alias
    from labs.common.tracking import configure_tracking

    configure_tracking()
    client = mlflow.MlflowClient()
    version, _ = register_version(
        client,
        config.model_name,
        model,
        experiment=config.experiment,
        run_id=run_id,
        tags={"trained_by": "retrain flow"},
    )
    # Under the lock: MLflow sets an alias by read-then-insert, and two runs setting the same
    # alias at once make one of them fail on the store's unique key.
    with registry_lock(config.model_name):
        set_alias(
            client,
            config.model_name,
            CHALLENGER,
            version,
            reason=f"retrain run {run_id}",
            audit_log=resolve(config.audit_log),
        )
    return version


def promote_or_keep(
    champion: Champion,
    challenger_version: str,
    champion_score: float | None,
    challenger_score: float,
    config: RetrainConfig,
) -> tuple[str, str, str | None]:
    """Move ``champion`` in one step if the challenger wins by the margin and clears the floor;
    the replaced version keeps the alias ``previous``. Returns (action, reason, the champion
    version after this step).

    The comparison was made against ``champion`` as this run loaded it, minutes ago. Another
    run may have moved the alias since (two retraining runs at once), so the move is a
    compare-and-set: under :func:`~labs.common.registry.registry_lock` the champion is read
    again, and the alias moves only if it is still the one compared against. Otherwise this
    run keeps: its challenger is already champion, or its comparison is stale. Of two runs at
    once, at most one reports a promotion, and the registry, its tags and the audit log agree.
    """
    import mlflow

    from labs.common.registry import CHAMPION, alias_version, promote, registry_lock, repair
    from labs.common.tracking import configure_tracking

    if challenger_score < config.absolute_floor:
        return (
            "kept",
            f"challenger {challenger_score:.3f} is below the floor {config.absolute_floor}",
            champion.version,
        )
    if champion_score is not None and challenger_score < champion_score + config.margin:
        return (
            "kept",
            f"challenger {challenger_score:.3f} does not beat champion {champion_score:.3f} "
            f"by the margin {config.margin}",
            champion.version,
        )
    configure_tracking()
    client = mlflow.MlflowClient()
    audit_log = resolve(config.audit_log)
    why = f"challenger {challenger_score:.3f} beats champion " + (
        f"{champion_score:.3f} + margin {config.margin}" if champion_score is not None else "(none)"
    )
    with registry_lock(config.model_name):
        # A run killed between alias moves leaves the registry for this call to mend first.
        repair(client, config.model_name, audit_log=audit_log, previous=PREVIOUS)
        current = alias_version(client, config.model_name, CHAMPION)
        if current == challenger_version:
            return "kept", f"v{current} is already champion (moved there by another run)", current
        if current != champion.version:
            compared = f"v{champion.version or '—'}"
            stale = (
                f"champion moved from {compared} to v{current} while this run compared against "
                f"{compared}: the comparison is stale, nothing moved; run again"
            )
            return "kept", stale, current
        # One promote moves champion and points `previous` at the replaced version.
        promote(
            client,
            config.model_name,
            challenger_version,
            reason=why,
            audit_log=audit_log,
            previous=PREVIOUS,
        )
    return "promoted", why, challenger_version


# --- the wiring, shared by the flow and the lab -------------------------------------------------


@dataclass(frozen=True)
class Steps:
    """The steps :func:`run_retraining` calls: plain functions, or the same wrapped as tasks."""

    load_batch: Callable[..., pd.DataFrame] = load_batch
    check_batch: Callable[..., int] = check_batch
    load_reference: Callable[..., pd.DataFrame] = load_reference
    load_champion: Callable[..., Champion] = load_champion
    decide: Callable[..., Decision] = decide
    split_batch: Callable[..., tuple[pd.DataFrame, pd.DataFrame]] = split_batch
    train_challenger: Callable[..., Any] = train_challenger
    register_challenger: Callable[..., str] = register_challenger
    promote_or_keep: Callable[..., tuple[str, str, str | None]] = promote_or_keep


def run_retraining(
    config: RetrainConfig,
    steps: Steps | None = None,
    log: Callable[[str], None] = lambda _: None,
) -> Outcome:
    """One retraining decision, end to end; every number goes to MLflow (``config.experiment``).

    The champion alias moves at most once, at the very end, after every check has passed: a
    failure anywhere before leaves the registry's champion exactly as it was.
    """
    import mlflow
    from mlflow.entities import Param

    from labs.common.tracking import get_or_create_experiment

    steps = steps or Steps()
    experiment_id = get_or_create_experiment(config.experiment)
    client = mlflow.MlflowClient()
    run = client.create_run(experiment_id, run_name=f"retrain-month-{config.month}")
    run_id = run.info.run_id
    try:
        client.log_batch(run_id, params=[Param(k, v) for k, v in _flat(config).items()])
        batch = steps.load_batch(config)
        rows = steps.check_batch(batch, config)
        log(f"batch: {rows} valid rows")
        reference = steps.load_reference(config)
        champion = steps.load_champion(config)
        decision = steps.decide(batch, reference, champion, config)
        verdict = "retrain" if decision.retrain else "skip"
        log(f"decision: {verdict} — " + "; ".join(decision.reasons))
        _log_metrics(client, run_id, _numbers(asdict(decision)))
        outcome = Outcome(
            action="skipped",
            reasons=decision.reasons,
            champion_version=champion.version,
            challenger_version=None,
            champion_score=None,
            challenger_score=None,
            margin=config.margin,
            absolute_floor=config.absolute_floor,
            mlflow_run_id=run_id,
            decision=asdict(decision),
            champion_before=champion.version,
        )
        if decision.retrain:
            recent, holdout = steps.split_batch(batch, config)
            # Rows of the holdout the challenger also trained on (by the batch's row index):
            # its score on them is not a fair comparison. Recorded, never assumed to be 0.
            seen = int(holdout.index.isin(recent.index).sum())
            challenger = steps.train_challenger(reference, recent, config)
            champion_score = None if champion.model is None else score(champion.model, holdout)
            challenger_score = score(challenger, holdout)
            log(
                f"holdout ROC-AUC: champion {score_text(champion_score)}, "
                f"challenger {challenger_score:.3f}"
            )
            version = steps.register_challenger(challenger, config, run_id)
            action, why, champion_after = steps.promote_or_keep(
                champion, version, champion_score, challenger_score, config
            )
            outcome = replace(
                outcome,
                action=action,
                reasons=[*decision.reasons, why],
                champion_version=champion_after,
                challenger_version=version,
                champion_score=champion_score,
                challenger_score=challenger_score,
                holdout_rows=len(holdout),
                holdout_seen_in_training=seen,
            )
        log(outcome.headline())
        scores = {
            "champion_score": outcome.champion_score,
            "challenger_score": outcome.challenger_score,
        }
        _log_metrics(client, run_id, _numbers(scores))
        client.set_tag(run_id, "action", outcome.action)
        client.set_tag(run_id, "reasons", " | ".join(outcome.reasons)[:5000])
        client.set_terminated(run_id, "FINISHED")
        return outcome
    except BaseException as err:
        # Never left RUNNING, never FINISHED by a run that stopped: FAILED on an error, KILLED
        # when stopped from outside — anything that is not an Exception: Ctrl-C, SIGTERM as an
        # interrupt (our entry points) or as Prefect's TerminationSignal (under a flow), or an
        # error a library raised while it handled one.
        from labs.common.entry import stopped_from_outside

        client.set_tag(run_id, "error", f"{type(err).__name__}: {err}"[:5000])
        client.set_terminated(run_id, "KILLED" if stopped_from_outside(err) else "FAILED")
        raise


# --- helpers ------------------------------------------------------------------------------


def _flat(config: RetrainConfig) -> dict[str, str]:
    return {k: str(v)[:500] for k, v in asdict(config).items() if k != "stream"}


def _log_metrics(client: Any, run_id: str, metrics: dict[str, float]) -> None:
    from mlflow.entities import Metric

    now = int(time.time() * 1000)
    client.log_batch(run_id, metrics=[Metric(k, v, now, 0) for k, v in metrics.items()])


def _numbers(values: dict[str, Any]) -> dict[str, float]:
    return {
        k: float(v)
        for k, v in values.items()
        if isinstance(v, int | float) and not isinstance(v, bool) and np.isfinite(v)
    }
