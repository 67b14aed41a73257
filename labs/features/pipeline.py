"""The fitted feature pipeline, and the hand-written serving transform it replaces.

:func:`build_feature_pipeline` is the artefact the lab trains, logs and serves: imputation,
scaling, one-hot encoding and a derived ratio feature in one scikit-learn ``Pipeline``, built
only from scikit-learn estimators and numpy ufuncs so that skops can save and load it without
trusting any custom code.

:func:`handwritten_features` is what a serving team writes when it is handed a feature spec
(:func:`export_feature_spec`) and the model's weights instead of the fitted pipeline. With
no ``mistakes`` it reproduces the pipeline to rounding error; each mistake is one way such
re-implementations drift from training in practice.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from sklearn.compose import ColumnTransformer
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import roc_auc_score
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import (
    FunctionTransformer,
    OneHotEncoder,
    PolynomialFeatures,
    StandardScaler,
)

from labs.common.data import CATEGORICAL_FEATURES, CATEGORIES, FEATURES, NUMERIC_FEATURES

RATIO = "charges_per_tenure_month"  # monthly_charges / (tenure_months + 1)
RATIO_INPUTS = ["monthly_charges", "tenure_months"]
# The ways a hand-written serving transform goes wrong, each measured on its own.
MISTAKES: tuple[str, ...] = ("batch_statistics", "category_order", "missing_default")
MISTAKE_LABELS = {
    "batch_statistics": "medians, means and SDs computed on the serving batch",
    "category_order": "one-hot columns in the data dictionary's order",
    "missing_default": "a missing monthly_charges becomes 0",
}


def build_feature_pipeline(C: float = 1.0) -> Pipeline:
    """Raw customer columns in, churn probability out: every feature step is fitted on the
    training data and travels with the classifier."""
    numeric = make_pipeline(SimpleImputer(strategy="median"), StandardScaler())
    # scikit-learn has no "divide" step, but it has a product (PolynomialFeatures with only the
    # degree-2 interaction) and numpy ufuncs, which skops loads without trusting custom code:
    # 1 / (tenure + 1) = exp(-log1p(tenure)), times monthly_charges.
    inverse_tenure = make_pipeline(
        FunctionTransformer(np.log1p), FunctionTransformer(np.negative), FunctionTransformer(np.exp)
    )
    ratio = Pipeline(
        [
            ("impute", SimpleImputer(strategy="median")),
            (
                "parts",
                ColumnTransformer([("charges", "passthrough", [0]), ("inv", inverse_tenure, [1])]),
            ),
            (
                "product",
                PolynomialFeatures(degree=(2, 2), interaction_only=True, include_bias=False),
            ),
            ("scale", StandardScaler()),
        ]
    )
    categorical = OneHotEncoder(handle_unknown="ignore", sparse_output=False)
    features = ColumnTransformer(
        [
            ("numeric", numeric, list(NUMERIC_FEATURES)),
            (RATIO, ratio, RATIO_INPUTS),
            ("categorical", categorical, list(CATEGORICAL_FEATURES)),
        ]
    )
    return Pipeline(
        [("features", features), ("classifier", LogisticRegression(C=C, max_iter=1000))]
    )


def feature_names(pipeline: Pipeline) -> list[str]:
    """The columns the classifier sees, in order (the hand-written transform must match)."""
    spec = export_feature_spec(pipeline)
    one_hot = [f"{c}={v}" for c in CATEGORICAL_FEATURES for v in spec["categories"][c]]
    return [*NUMERIC_FEATURES, RATIO, *one_hot]


def export_feature_spec(pipeline: Pipeline) -> dict[str, Any]:
    """What a training team hands a serving team that re-implements the features: the learned
    medians, means, SDs and category lists, as plain numbers and strings."""
    steps = pipeline.named_steps["features"].named_transformers_
    impute, scale = steps["numeric"][0], steps["numeric"][1]
    ratio_scale = steps[RATIO].named_steps["scale"]
    encoder = steps["categorical"]
    return {
        "median": dict(zip(NUMERIC_FEATURES, impute.statistics_.tolist(), strict=True)),
        "mean": dict(zip(NUMERIC_FEATURES, scale.mean_.tolist(), strict=True)),
        "sd": dict(zip(NUMERIC_FEATURES, scale.scale_.tolist(), strict=True)),
        "ratio_mean": float(ratio_scale.mean_[0]),
        "ratio_sd": float(ratio_scale.scale_[0]),
        "categories": {
            c: [str(v) for v in cats]
            for c, cats in zip(CATEGORICAL_FEATURES, encoder.categories_, strict=True)
        },
    }


def handwritten_features(
    batch: pd.DataFrame, spec: dict[str, Any], mistakes: Collection[str] = ()
) -> np.ndarray:
    """The serving team's re-implementation of the pipeline's features, in pandas/numpy."""
    unknown = set(mistakes) - set(MISTAKES)
    if unknown:
        raise ValueError(f"unknown mistakes {sorted(unknown)}; known: {list(MISTAKES)}")
    raw = batch[list(NUMERIC_FEATURES)].astype(float)
    if "missing_default" in mistakes:
        fill = dict.fromkeys(NUMERIC_FEATURES, 0.0)
    elif "batch_statistics" in mistakes:
        fill = raw.median().to_dict()
    else:
        fill = spec["median"]
    numbers = raw.fillna(fill)
    ratio = numbers["monthly_charges"] / (numbers["tenure_months"] + 1)
    if "batch_statistics" in mistakes:
        mean, sd = numbers.mean(), numbers.std(ddof=0).replace(0.0, 1.0)
        ratio_mean, ratio_sd = ratio.mean(), ratio.std(ddof=0) or 1.0
    else:
        mean, sd = pd.Series(spec["mean"]), pd.Series(spec["sd"])
        ratio_mean, ratio_sd = spec["ratio_mean"], spec["ratio_sd"]
    columns = [((numbers - mean) / sd).to_numpy(), ((ratio - ratio_mean) / ratio_sd).to_numpy()]
    for name in CATEGORICAL_FEATURES:
        order = list(CATEGORIES[name]) if "category_order" in mistakes else spec["categories"][name]
        values = batch[name].astype(str).to_numpy()
        columns.append(np.column_stack([values == category for category in order]).astype(float))
    return np.column_stack([c.reshape(len(batch), -1) for c in columns])


# --- serving paths and what their differences cost ---------------------------------------


Scorer = Callable[[pd.DataFrame], np.ndarray]


@dataclass(frozen=True)
class SkewResult:
    """One serving path compared with the offline predictions on the same labelled rows."""

    path: str
    flipped_share: float
    flipped_rows: int
    max_abs_dp: float
    roc_auc: float
    auc_loss: float


def serve_in_batches(score: Scorer, frame: pd.DataFrame, batch_rows: int) -> np.ndarray:
    """Churn probabilities for ``frame``, scored ``batch_rows`` rows at a time (one request
    each), as a serving endpoint sees them."""
    starts = range(0, len(frame), batch_rows)
    return np.concatenate([score(frame.iloc[s : s + batch_rows]) for s in starts])


def compare_with_offline(
    path: str, offline: np.ndarray, served: np.ndarray, y: Sequence[int], threshold: float = 0.5
) -> SkewResult:
    """Labels flipped, the largest probability difference, and the ROC-AUC lost."""
    flips = (offline >= threshold) != (served >= threshold)
    auc_offline = roc_auc_score(y, offline)
    auc = roc_auc_score(y, served)
    return SkewResult(
        path=path,
        flipped_share=float(flips.mean()),
        flipped_rows=int(flips.sum()),
        max_abs_dp=float(np.max(np.abs(offline - served))),
        roc_auc=float(auc),
        auc_loss=float(auc_offline - auc),
    )


def measure_skew(
    fitted: Pipeline,
    holdout: pd.DataFrame,
    y: Sequence[int],
    batch_rows: int,
    served: np.ndarray,
) -> dict[str, SkewResult]:
    """Every serving path on the holdout against the fitted pipeline's offline predictions:
    ``served`` (what the serving process answered, in requests of ``batch_rows`` rows), and
    hand-written transforms scored here the same way — a faithful one, each mistake alone,
    and all of them together — each feeding the fitted classifier."""
    x = holdout[list(FEATURES)]
    offline = fitted.predict_proba(x)[:, 1]
    spec = export_feature_spec(fitted)
    classifier = fitted.named_steps["classifier"]

    def handwritten(mistakes: Collection[str]) -> Scorer:
        return lambda batch: classifier.predict_proba(handwritten_features(batch, spec, mistakes))[
            :, 1
        ]

    paths: dict[str, Scorer] = {
        "faithful_handwritten": handwritten(()),
        **{f"only_{m}": handwritten([m]) for m in MISTAKES},
        "handwritten": handwritten(MISTAKES),
    }
    results = {"shipped_pipeline": compare_with_offline("shipped_pipeline", offline, served, y)}
    return results | {
        name: compare_with_offline(name, offline, serve_in_batches(score, x, batch_rows), y)
        for name, score in paths.items()
    }
