"""Feature engineering inside the pipeline: training–serving skew, and point-in-time joins.

Two ways features go wrong between a notebook and production, each measured on toy churn data.

1. **Training–serving skew.** The churn model's features — median imputation, scaling,
   one-hot encoding and a derived ratio, charges per month of tenure — are one fitted
   scikit-learn pipeline. It is logged to MLflow and served from that one artefact. We compare
   it with what a serving team writes when it gets a feature spec and the model's weights
   instead: the same features re-implemented by hand, with three everyday mistakes
   (statistics computed on the serving batch, one-hot columns in a different order, a missing
   value defaulting to 0). Both serve the same labelled holdout in requests of a few rows.

2. **Point-in-time correctness.** The ``support_calls`` feature is rebuilt from an event log
   of support calls. Customers who leave call to cancel — *after* the date on which the model
   would have scored them. A training table made by a plain join counts those calls too; an
   as-of join (``pandas.merge_asof``) counts only what was known at the decision date. We train
   on each and score later customers the way production does.

The parts the lab demonstrates are keyword arguments of :func:`run` — what is logged as the
model (``package``), how serving computes features (``serving``), how production counts
calls (``production_feature``) and the training table's join (``training_join``); the
counterfactuals in ``counterfactuals.py`` hand it broken ones.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from labs.common.catalogue import topic
from labs.common.data import FEATURES, TARGET, Incident, make_churn_data
from labs.common.model import quality_metrics
from labs.common.params import check_at_least, check_open_unit
from labs.common.results import LabResult, artifact_path, claim_metrics
from labs.features import events
from labs.features.claims import make_claims
from labs.features.pipeline import (
    build_feature_pipeline,
    export_feature_spec,
    feature_names,
    measure_skew,
)
from labs.features.report import format_tables, plot_skew_and_leakage, write_tables
from labs.features.serving import (
    ArtefactServing,
    check_artefact,
    serve_request,
    ship_fitted_pipeline,
    start_serving,
    warm_up,
)

QUESTION = topic("features").question
EXPERIMENT = topic("features").experiment


@dataclass(frozen=True)
class FeaturesParams:
    """Parameters of the features lab (``params.yaml`` → ``features``)."""

    seed: int = 5
    train_rows: int = 4000
    holdout_rows: int = 2000
    missing_rate: float = 0.1
    serving_batch_rows: int = 50
    C: float = 1.0
    skew_flip_alert: float = 0.02
    skew_auc_alert: float = 0.01
    pit_customers: int = 6000
    pit_production_customers: int = 3000
    history_days: int = 90
    outcome_days: int = 30
    cancel_calls_churned: float = 2.0
    cancel_calls_stayed: float = 0.2
    pit_leak_alert: float = 0.05
    pit_honest_gap: float = 0.03

    def __post_init__(self) -> None:
        check_at_least(
            self,
            "features",
            {
                "train_rows": 200,
                "holdout_rows": 100,
                "serving_batch_rows": 2,
                "pit_customers": 400,
                "pit_production_customers": 200,
                "history_days": 1,
                "outcome_days": 1,
            },
        )
        if not 0 <= self.missing_rate < 0.5:
            raise ValueError(
                f"features.missing_rate must be in [0, 0.5), got {self.missing_rate!r}"
            )
        if self.C <= 0:
            raise ValueError(f"features.C must be > 0, got {self.C!r}")
        for name in ("cancel_calls_churned", "cancel_calls_stayed"):
            if getattr(self, name) < 0:
                raise ValueError(f"features.{name} must be >= 0, got {getattr(self, name)!r}")
        check_open_unit(
            self,
            "features",
            ("skew_flip_alert", "skew_auc_alert", "pit_leak_alert", "pit_honest_gap"),
        )


def run(
    params: FeaturesParams,
    out_dir: Path,
    echo: Callable[[str], None] = lambda _: None,
    *,
    package: Callable[[Any], Any] = ship_fitted_pipeline,
    serving: type = ArtefactServing,
    production_feature: Callable[[pd.DataFrame, pd.DataFrame], pd.Series] = events.live_feature,
    training_join: Callable[[pd.DataFrame, pd.DataFrame], pd.DataFrame] = events.asof_join,
) -> LabResult:
    """Train, log and serve the feature pipeline; measure skew and point-in-time leakage.

    ``package`` turns the fitted pipeline into what is logged as the model; ``serving`` is
    the class the serving process builds on the loaded model; ``production_feature`` counts
    each customer's calls as production does; ``training_join`` builds the honest training
    table. Each defaults to the real part."""
    import mlflow

    from labs.common.sidecar import sidecar
    from labs.common.tracking import log_sklearn_model, logged_model_file, start_run

    out_dir.mkdir(parents=True, exist_ok=True)

    # Upstream sometimes sends no monthly_charges: imputation is part of the features, in
    # training and in serving alike. The holdout is the same population, labelled.
    missing = [Incident("missing_values", "monthly_charges", rate=params.missing_rate)]
    train = make_churn_data(params.train_rows, seed=params.seed, incidents=missing)
    holdout = make_churn_data(params.holdout_rows, seed=params.seed + 1, incidents=missing)
    x = holdout[list(FEATURES)]
    with sidecar() as side, start_run(EXPERIMENT, "features-lab", asdict(params)) as mlflow_run:
        # The serving process imports its libraries while the lab fits.
        warm = side.submit(warm_up)
        echo(f"Fitting the feature pipeline on {len(train)} customers …")
        pipeline = build_feature_pipeline(params.C).fit(train[list(FEATURES)], train[TARGET])
        trained_p = pipeline.predict_proba(x)[:, 1]

        echo(f"Logging it to MLflow (experiment {EXPERIMENT}); a fresh process loads it …")
        # One artefact, saved with skops and loaded back with only exact, allowlisted types
        # trusted, in a process that never saw the fitted object: what serving gets.
        info = log_sklearn_model(package(pipeline), name="feature-pipeline")
        model_file = logged_model_file(info.model_uri)  # the artefact's one file, downloaded
        warm.result()
        fresh = side.submit(check_artefact, model_file, x).result()
        artefact = artefact_numbers(pipeline, fresh, trained_p, holdout[TARGET])

        # The serving process answers requests of serving_batch_rows customers through the
        # serving path; what it computed is compared with the offline features and scores.
        echo(f"Serving {len(holdout)} customers, {params.serving_batch_rows} per request …")
        serving_pid = side.submit(
            start_serving, serving, model_file, export_feature_spec(pipeline)
        ).result()
        starts = range(0, len(x), params.serving_batch_rows)
        answers = [
            side.submit(serve_request, x.iloc[s : s + params.serving_batch_rows]) for s in starts
        ]
        served_features = np.concatenate([a.result()[0] for a in answers])
        served_p = np.concatenate([a.result()[1] for a in answers])
        features_skew = feature_skew(pipeline[:-1].transform(x), served_features)
        features_skew |= {"requests": len(starts), "serving_process": serving_pid != os.getpid()}
        skew = measure_skew(pipeline, holdout, holdout[TARGET], params.serving_batch_rows, served_p)

        echo("Point in time: building the support-call log and three ways to count calls …")
        pit = measure_point_in_time(params, production_feature, training_join)

        claims = make_claims(params, artefact, skew, features_skew, pit)
        echo("")
        echo(format_tables(skew, pit))
        echo("")
        files = [
            plot_skew_and_leakage(
                skew, pit, params.skew_flip_alert, out_dir / "skew_and_leakage.png"
            ),
            write_tables(skew, pit, out_dir / "tables.md"),
        ]
        mlflow.log_metrics(claim_metrics(claims))
        for f in files:
            mlflow.log_artifact(str(f))
        run_id = mlflow_run.info.run_id

    return LabResult(
        lab="features",
        question=QUESTION,
        claims=claims,
        artifacts=[artifact_path(f) for f in files],
        mlflow={"experiment": EXPERIMENT, "run_id": run_id, "model_uri": info.model_uri},
    )


def artefact_numbers(
    pipeline: Any, fresh: dict[str, Any], trained_p: np.ndarray, y: pd.Series
) -> dict[str, Any]:
    """What the fresh process found in the artefact, next to the trained pipeline."""
    proba = fresh["proba"]
    columns = fresh["input_columns"]
    return {
        "artefact_type": fresh["artefact_type"],
        "model_file": fresh["model_file"],
        "raw_input_columns": None if columns is None else len(columns),
        "takes_the_raw_columns": columns == list(FEATURES),
        "inputs_expected": fresh["n_inputs"],
        "model_features": len(feature_names(pipeline)),
        "steps": _step_names(pipeline),
        "loaded_in_another_process": fresh["pid"] != os.getpid(),
        "fresh_process_vs_trained_max_abs_dp": (
            None if proba is None else float(np.max(np.abs(proba - trained_p)))
        ),
        "holdout_roc_auc": quality_metrics(y, trained_p)["roc_auc"],
    } | ({"raw_rows_refused": fresh["error"]} if fresh["error"] else {})


def feature_skew(offline: np.ndarray, served: np.ndarray, tolerance: float = 1e-12) -> dict:
    """Rows whose served feature vector differs from the offline one beyond ``tolerance``."""
    if offline.shape != served.shape:  # another feature layout: every row is skewed
        return {"rows_served": len(served), "rows_with_feature_skew": len(served),
                "max_abs_feature_diff": None, "feature_columns": served.shape[1:]}  # fmt: skip
    diff = np.abs(offline - served).max(axis=1)
    return {
        "rows_served": len(served),
        "rows_with_feature_skew": int((diff > tolerance).sum()),
        "max_abs_feature_diff": float(diff.max()),
    }


# --- point in time ------------------------------------------------------------------------


def measure_point_in_time(
    params: FeaturesParams,
    production_feature: Callable[[pd.DataFrame, pd.DataFrame], pd.Series] = events.live_feature,
    training_join: Callable[[pd.DataFrame, pd.DataFrame], pd.DataFrame] = events.asof_join,
) -> dict[str, dict[str, Any]]:
    """Train on a naive join and on ``training_join`` (the as-of join) of the call log; score
    later customers with the calls ``production_feature`` counts at their decision time.
    Offline = the later half of the training table."""
    span = 300
    past = events.make_customers(params.pit_customers, params.seed + 20, 0, events.EPOCH, span)
    later = events.make_customers(
        params.pit_production_customers,
        params.seed + 21,
        params.pit_customers,
        events.EPOCH + pd.Timedelta(days=span + params.outcome_days),
        span,
    )
    knobs = {
        "history_days": params.history_days,
        "outcome_days": params.outcome_days,
        "cancel_calls_churned": params.cancel_calls_churned,
        "cancel_calls_stayed": params.cancel_calls_stayed,
    }
    # The training table is built today: the log holds every call of those customers, also
    # those after their decision date. Production scores each later customer at its decision
    # time, when only earlier calls exist.
    past_log = events.make_call_log(past, params.seed + 22, **knobs)
    later_log = events.make_call_log(later, params.seed + 23, **knobs)
    production = later.assign(**{events.CALLS: production_feature(later, later_log)})

    live = production_feature(past, past_log)  # what production would have counted
    results: dict[str, dict[str, Any]] = {}
    for name, join in (("naive_join", events.naive_join), ("asof_join", training_join)):
        table = join(past, past_log)
        # Offline evaluation the usual, honest-looking way: fit on the earlier half of the
        # decision dates, validate on the later half.
        cut = table[events.DECISION].quantile(0.5)
        fit_rows, valid = table[table[events.DECISION] <= cut], table[table[events.DECISION] > cut]
        model = build_feature_pipeline(params.C).fit(fit_rows[list(FEATURES)], fit_rows[TARGET])
        offline = model.predict_proba(valid[list(FEATURES)])[:, 1]
        online = model.predict_proba(production[list(FEATURES)])[:, 1]
        future = int((table[events.CALLS] - live).sum())
        results[name] = {
            "offline_roc_auc": quality_metrics(valid[TARGET], offline)["roc_auc"],
            "production_roc_auc": quality_metrics(production[TARGET], online)["roc_auc"],
            "future_calls_counted": future,
            "future_call_share": future / max(int(table[events.CALLS].sum()), 1),
            "rows_differing_from_live": int((table[events.CALLS] != live).sum()),
            "support_calls_weight": float(model.named_steps["classifier"].coef_[0][2]),
        }
        results[name]["gap"] = (
            results[name]["offline_roc_auc"] - results[name]["production_roc_auc"]
        )
    return results


# --- helpers ---------------------------------------------------------------------------------


def _step_names(pipeline: Any) -> list[str]:
    features = pipeline.named_steps["features"]
    return [name for name, _, _ in features.transformers_ if name != "remainder"] + ["classifier"]
