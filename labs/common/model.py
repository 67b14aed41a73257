"""The churn model: one training and evaluation code path for DVC, Prefect and every lab."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import pandas as pd
from sklearn.compose import ColumnTransformer
from sklearn.ensemble import RandomForestClassifier
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import accuracy_score, f1_score, precision_score, recall_score, roc_auc_score
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler

from labs.common.data import CATEGORICAL_FEATURES, FEATURES, NUMERIC_FEATURES, TARGET

ModelType = Literal["logistic_regression", "random_forest"]


@dataclass(frozen=True)
class TrainParams:
    """Hyperparameters of the ``train`` stage (``params.yaml`` → ``train``)."""

    model_type: ModelType = "logistic_regression"
    C: float = 1.0
    n_estimators: int = 100
    max_depth: int | None = 8
    seed: int = 0

    def __post_init__(self) -> None:
        if self.model_type not in ("logistic_regression", "random_forest"):
            raise ValueError(
                f"train.model_type must be 'logistic_regression' or 'random_forest', "
                f"got {self.model_type!r}"
            )
        if self.C <= 0:
            raise ValueError(f"train.C must be > 0, got {self.C!r}")


def build_model(params: TrainParams) -> Pipeline:
    """Preprocessing (scale numbers, one-hot categories) + classifier, in one pipeline, so
    serving applies exactly the transformations training did."""
    preprocess = ColumnTransformer(
        [
            ("numeric", StandardScaler(), list(NUMERIC_FEATURES)),
            (
                "categorical",
                OneHotEncoder(handle_unknown="ignore", sparse_output=False),
                list(CATEGORICAL_FEATURES),
            ),
        ]
    )
    if params.model_type == "logistic_regression":
        classifier: Any = LogisticRegression(C=params.C, max_iter=1000)
    else:
        classifier = RandomForestClassifier(
            n_estimators=params.n_estimators,
            max_depth=params.max_depth,
            random_state=params.seed,
            n_jobs=1,
        )
    return Pipeline([("preprocess", preprocess), ("classifier", classifier)])


def split_xy(frame: pd.DataFrame) -> tuple[pd.DataFrame, pd.Series]:
    """Features (in the canonical order) and the label; a clear error if columns are missing."""
    missing = [c for c in (*FEATURES, TARGET) if c not in frame.columns]
    if missing:
        raise ValueError(f"frame lacks columns {missing}; it has {list(frame.columns)}")
    return frame[list(FEATURES)], frame[TARGET].astype(int)


def train_model(
    frame: pd.DataFrame, params: TrainParams, sample_weight: np.ndarray | None = None
) -> Pipeline:
    """Fit the churn pipeline on a labelled frame (optionally weighting rows, e.g. recent ones)."""
    x, y = split_xy(frame)
    if y.nunique() < 2:
        raise ValueError("training data has a single class; cannot fit a classifier")
    if sample_weight is None:
        return build_model(params).fit(x, y)
    if len(sample_weight) != len(frame):
        raise ValueError(f"sample_weight has {len(sample_weight)} values for {len(frame)} rows")
    return build_model(params).fit(x, y, classifier__sample_weight=np.asarray(sample_weight))


def quality_metrics(
    y_true: Sequence[int] | pd.Series | np.ndarray,
    proba: Sequence[float] | pd.Series | np.ndarray,
    threshold: float = 0.5,
) -> dict[str, float]:
    """Quality of churn probabilities against true labels: accuracy, precision, recall, F1,
    ROC-AUC (NaN with a single class), true and predicted churn rates, and ``n_rows``."""
    y = np.asarray(y_true, dtype=int)
    p = np.asarray(proba, dtype=float)
    if len(y) != len(p):
        raise ValueError(f"{len(y)} labels for {len(p)} probabilities")
    if len(y) == 0:
        raise ValueError("no rows to measure quality on")
    pred = (p >= threshold).astype(int)
    return {
        "accuracy": float(accuracy_score(y, pred)),
        "precision": float(precision_score(y, pred, zero_division=0)),
        "recall": float(recall_score(y, pred, zero_division=0)),
        "f1": float(f1_score(y, pred, zero_division=0)),
        "roc_auc": float(roc_auc_score(y, p)) if len(np.unique(y)) == 2 else float("nan"),
        "churn_rate": float(np.mean(y)),
        "predicted_churn_rate": float(np.mean(pred)),
        "n_rows": int(len(y)),
    }


def evaluate_model(
    model: Pipeline, frame: pd.DataFrame, threshold: float = 0.5
) -> dict[str, float]:
    """:func:`quality_metrics` of ``model`` on a labelled frame."""
    x, y = split_xy(frame)
    return quality_metrics(y, model.predict_proba(x)[:, 1], threshold)
