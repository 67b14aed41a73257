"""The performance gate: absolute thresholds (ROC-AUC, recall at a fixed precision, expected
calibration error) and "beats a DummyClassifier and the champion by more than seed noise".

The metrics are computed here; the verdict and its messages come from MLflow's own
``mlflow.validate_evaluation_results`` with ``MetricThreshold`` objects, fed
``EvaluationResult`` objects built from these metrics. ``mlflow.models.evaluate`` itself is not
used: its default evaluator has no recall-at-precision or calibration error built in, computes
and logs a dozen plots and tables per call, and the lab calls the gate many times on a
60-second budget — the thresholds, not the evaluator, are what a gate needs.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from labs.common.data import FEATURES, NUMERIC_FEATURES, TARGET, make_churn_data
from labs.common.model import TrainParams, train_model


@dataclass(frozen=True)
class GateVerdict:
    """One candidate through the gate: its metrics, pass/fail, MLflow's failure messages."""

    name: str
    metrics: dict[str, float]
    passed: bool
    failures: list[str] = field(default_factory=list)


def recall_at_precision(y: np.ndarray, p: np.ndarray, precision: float) -> float:
    """The highest recall over thresholds whose precision is at least ``precision``."""
    from sklearn.metrics import precision_recall_curve

    prec, rec, _ = precision_recall_curve(y, p)
    ok = prec >= precision
    return float(rec[ok].max()) if ok.any() else 0.0


def expected_calibration_error(y: np.ndarray, p: np.ndarray, bins: int = 10) -> float:
    """Mean |observed rate − mean predicted probability| over equal-width bins, row-weighted."""
    edges = np.linspace(0, 1, bins + 1)
    which = np.clip(np.digitize(p, edges[1:-1]), 0, bins - 1)
    error = 0.0
    for b in range(bins):
        mask = which == b
        if mask.any():
            error += mask.mean() * abs(float(y[mask].mean()) - float(p[mask].mean()))
    return float(error)


def gate_metrics(y: np.ndarray, p: np.ndarray, precision: float) -> dict[str, float]:
    from sklearn.metrics import roc_auc_score

    return {
        "roc_auc": float(roc_auc_score(y, p)),
        "recall_at_precision": recall_at_precision(y, p, precision),
        "calibration_error": expected_calibration_error(y, p),
    }


def numeric_only_model(train: pd.DataFrame) -> Any:
    """Last year's champion: the same classifier on the numeric columns only."""
    from sklearn.compose import ColumnTransformer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import StandardScaler

    pre = ColumnTransformer([("numeric", StandardScaler(), list(NUMERIC_FEATURES))])
    model = Pipeline([("preprocess", pre), ("classifier", LogisticRegression(max_iter=1000))])
    return model.fit(train[list(FEATURES)], train[TARGET])


def dummy_model(train: pd.DataFrame) -> Any:
    from sklearn.dummy import DummyClassifier

    return DummyClassifier(strategy="prior").fit(train[list(FEATURES)], train[TARGET])


def with_label_noise(frame: pd.DataFrame, share: float, seed: int) -> pd.DataFrame:
    """The planted defect: a share of training labels replaced by coin flips (a join bug)."""
    rng = np.random.default_rng(seed)
    noisy = frame.copy()
    hit = rng.random(len(frame)) < share
    noisy.loc[hit, TARGET] = rng.integers(0, 2, int(hit.sum()))
    return noisy


def seed_noise(
    holdout: pd.DataFrame, train_rows: int, seeds: int, first_seed: int, precision: float
) -> dict[str, Any]:
    """Retrain the candidate recipe on ``seeds`` fresh training samples: the spread of each
    metric on the fixed holdout is the noise any "better by" margin must exceed."""
    values: dict[str, list[float]] = {}
    y = holdout[TARGET].to_numpy()
    for s in range(seeds):
        train = make_churn_data(train_rows, seed=first_seed + 1000 + s)
        model = train_model(train, TrainParams(seed=s))
        m = gate_metrics(y, model.predict_proba(holdout[list(FEATURES)])[:, 1], precision)
        for k, v in m.items():
            values.setdefault(k, []).append(v)
    return {
        "seeds": seeds,
        "roc_auc_values": values["roc_auc"],
        "roc_auc_std": float(np.std(values["roc_auc"], ddof=1)),
        "recall_at_precision_std": float(np.std(values["recall_at_precision"], ddof=1)),
    }


def run_gate(
    name: str,
    metrics: dict[str, float],
    baselines: dict[str, dict[str, float]],
    *,
    min_roc_auc: float,
    min_recall_at_precision: float,
    max_calibration_error: float,
    margin: float,
) -> GateVerdict:
    """Absolute thresholds, then "better than each baseline by ``margin`` ROC-AUC", judged
    by ``mlflow.validate_evaluation_results``; every failure message is kept."""
    import logging

    import mlflow
    from mlflow.exceptions import MlflowException
    from mlflow.models import EvaluationResult, MetricThreshold

    logging.getLogger("mlflow.models.evaluation.validation").setLevel(logging.WARNING)
    candidate = EvaluationResult(metrics=metrics, artifacts={})
    checks: list[tuple[dict[str, MetricThreshold], EvaluationResult | None]] = [
        (
            {
                "roc_auc": MetricThreshold(threshold=min_roc_auc, greater_is_better=True),
                "recall_at_precision": MetricThreshold(
                    threshold=min_recall_at_precision, greater_is_better=True
                ),
                "calibration_error": MetricThreshold(
                    threshold=max_calibration_error, greater_is_better=False
                ),
            },
            None,
        )
    ]
    for baseline in baselines.values():
        checks.append(
            (
                {"roc_auc": MetricThreshold(min_absolute_change=margin, greater_is_better=True)},
                EvaluationResult(metrics=baseline, artifacts={}),
            )
        )
    failures = []
    for (thresholds, baseline), label in zip(checks, ["thresholds", *baselines], strict=True):
        try:
            mlflow.validate_evaluation_results(thresholds, candidate, baseline)
        except MlflowException as err:
            failures += [f"[{label}] {line.strip()}" for line in str(err).splitlines() if line]
    return GateVerdict(name, metrics, not failures, failures)
