"""The measuring tools of the explainability lab: data with a planted noise and a planted leak,
a tree model in a pipeline, and four ways to say which input matters — the generator's truth,
SHAP, permutation importance on the holdout, and impurity (MDI) importance — all reported per
*original* column, so they can be compared with each other and with the truth.

``shap`` is imported inside the functions that use it (numba makes its import cost seconds).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from sklearn.compose import ColumnTransformer
from sklearn.ensemble import RandomForestClassifier
from sklearn.inspection import permutation_importance
from sklearn.metrics import roc_auc_score
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import OneHotEncoder

from labs.common.data import (
    CATEGORICAL_FEATURES,
    FEATURES,
    TARGET,
    churn_probability,
    make_churn_data,
)

# A pure-noise, high-cardinality column: an id-like code drawn independently of everything.
NOISE = "customer_code"
# A planted leak: calls to the retention desk during the notice period — made *after* the
# customer gave notice, so it is derived from the label and unknown at prediction time.
LEAK = "retention_calls"


@dataclass(frozen=True)
class Explanation:
    """SHAP values of one model for some rows, per original column (one-hot columns summed)."""

    columns: list[str]
    values: np.ndarray  # rows × columns, contributions to P(churn)
    base_value: float
    output: np.ndarray  # the model's P(churn) for the rows
    n_transformed: int  # how many columns the classifier saw (after one-hot encoding)

    @property
    def additivity_error(self) -> np.ndarray:
        """|base value + sum of contributions − model output| per row."""
        return np.abs(self.base_value + self.values.sum(axis=1) - self.output)

    def global_importance(
        self, summary: Callable[[np.ndarray], np.ndarray] | None = None
    ) -> dict[str, float]:
        """Per column, ``summary`` of its contributions over the explained rows (mean |value|)."""
        per_column = (summary or mean_abs)(self.values)
        return dict(zip(self.columns, np.asarray(per_column).tolist(), strict=True))


def mean_abs(values: np.ndarray) -> np.ndarray:
    """Global importance: mean |SHAP value| per column (signs cancel otherwise)."""
    return np.abs(values).mean(axis=0)


def make_frames(
    n_train: int,
    n_holdout: int,
    seed: int,
    noise_cardinality: int,
    leak_mean_churned: float,
    leak_mean_stayed: float,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Training and holdout customers with the noise code and the leaky retention calls added."""
    frames = []
    for n, part in ((n_train, 0), (n_holdout, 1)):
        frame = make_churn_data(n, seed=seed + part)
        rng = np.random.default_rng([seed, part, 4099])
        frame[NOISE] = rng.integers(0, noise_cardinality, n)
        churned = frame[TARGET].to_numpy()
        mean = np.where(churned == 1, leak_mean_churned, leak_mean_stayed)
        frame[LEAK] = rng.poisson(mean)
        frames.append(frame)
    return frames[0], frames[1]


def columns_for(leaky: bool) -> list[str]:
    """The model's raw input columns in the data's own order: the generator's features (numbers,
    then categories), the noise code, maybe the leak. The pipeline's one-hot step outputs
    them in another order (all numbers first): mapping SHAP values back must follow *its*
    order (:func:`original_columns`)."""
    return [*FEATURES, NOISE, *([LEAK] if leaky else [])]


def build_forest(
    columns: list[str], n_estimators: int, max_depth: int | None, seed: int
) -> Pipeline:
    """One-hot categories, pass numbers through (trees need no scaling), a random forest."""
    numeric = [c for c in columns if c not in CATEGORICAL_FEATURES]
    preprocess = ColumnTransformer(
        [
            ("numeric", "passthrough", numeric),
            (
                "categorical",
                OneHotEncoder(handle_unknown="ignore", sparse_output=False),
                list(CATEGORICAL_FEATURES),
            ),
        ]
    )
    forest = RandomForestClassifier(
        n_estimators=n_estimators, max_depth=max_depth, random_state=seed, n_jobs=1
    )
    return Pipeline([("preprocess", preprocess), ("classifier", forest)])


def original_columns(model: Pipeline, columns: list[str] | None = None) -> list[str]:
    """For each column the classifier sees, the raw column it came from (in the same order)."""
    preprocess: ColumnTransformer = model.named_steps["preprocess"]
    owners: list[str] = []
    for name, transformer, cols in preprocess.transformers_:
        if name == "remainder":
            continue
        if isinstance(transformer, OneHotEncoder):
            for col, cats in zip(cols, transformer.categories_, strict=True):
                owners += [col] * len(cats)
        else:
            owners += list(cols)
    return owners


def _group(values: np.ndarray, owners: list[str], columns: list[str]) -> np.ndarray:
    """Sum the transformed columns' values into their raw columns (SHAP is additive, so the
    sum of a one-hot group's contributions is the contribution of the original column)."""
    index = np.array([columns.index(o) for o in owners])
    out = np.zeros((values.shape[0], len(columns)))
    np.add.at(out.T, index, values.T)
    return out


Owners = Callable[[Pipeline, list[str]], list[str]]


def tree_shap(classifier: Any, transformed: np.ndarray) -> tuple[np.ndarray, float]:
    """Exact tree SHAP values of P(churn) (class 1) per transformed column, and the base value."""
    import shap

    explainer = shap.TreeExplainer(classifier)
    raw = np.asarray(explainer.shap_values(transformed, check_additivity=False))
    values = raw[:, :, 1] if raw.ndim == 3 else raw  # (rows, features, classes) → class 1
    return values, float(np.ravel(explainer.expected_value)[-1])


def shap_explain(
    model: Pipeline,
    rows: pd.DataFrame,
    columns: list[str],
    owners_of: Owners = original_columns,
    explainer: Callable[[Any, np.ndarray], tuple[np.ndarray, float]] = tree_shap,
) -> Explanation:
    """Tree SHAP values of P(churn) for ``rows``. ``TreeExplainer`` does not accept a Pipeline:
    explain the forest on the transformed rows, then map each transformed column back to its
    raw column with ``owners_of`` (one-hot columns summed). ``output`` is *our pipeline's*
    P(churn) on the raw rows, so additivity checks the whole path, not shap's own sum."""
    transformed = model.named_steps["preprocess"].transform(rows[columns])
    values, base = explainer(model.named_steps["classifier"], transformed)
    owners = owners_of(model, list(columns))
    return Explanation(
        columns=list(columns),
        values=_group(values, owners, list(columns)),
        base_value=base,
        output=model.predict_proba(rows[columns])[:, 1],
        n_transformed=len(owners),
    )


def permutation_scores(
    model: Pipeline, holdout: pd.DataFrame, columns: list[str], repeats: int, seed: int
) -> dict[str, dict[str, float]]:
    """Holdout ROC-AUC lost when one raw column is shuffled (mean and std over repeats).
    Shuffling raw columns through the whole pipeline needs no name mapping at all."""
    result = permutation_importance(
        model,
        holdout[columns],
        holdout[TARGET],
        scoring="roc_auc",
        n_repeats=repeats,
        random_state=seed,
        n_jobs=1,
    )
    return {
        c: {"mean": float(m), "std": float(s)}
        for c, m, s in zip(columns, result.importances_mean, result.importances_std, strict=True)
    }


def mdi_importance(
    model: Pipeline, columns: list[str], owners_of: Owners = original_columns
) -> dict[str, float]:
    """The forest's impurity importance (from the training data), summed per raw column."""
    mdi = model.named_steps["classifier"].feature_importances_
    grouped = _group(mdi[None, :], owners_of(model, list(columns)), columns)[0]
    return dict(zip(columns, grouped.tolist(), strict=True))


def true_contributions(rows: pd.DataFrame) -> pd.DataFrame:
    """The generator's own per-feature contributions to the churn log-odds, centred on the
    rows' mean. The true model is additive in log-odds, so setting one column to a constant
    changes the log-odds by exactly that column's term; centring removes the constant."""
    logit = _logodds(churn_probability(rows))
    out = {}
    for col in FEATURES:
        held = rows.copy()
        held[col] = rows[col].iloc[0]
        term = logit - _logodds(churn_probability(held))
        out[col] = term - term.mean()
    return pd.DataFrame(out, index=rows.index)


def true_importance(rows: pd.DataFrame, columns: list[str]) -> dict[str, float]:
    """Mean |true contribution| per column; 0 for the noise and the leak (not causes)."""
    truth = true_contributions(rows).abs().mean()
    return {c: float(truth.get(c, 0.0)) for c in columns}


def single_feature_auc(train: pd.DataFrame, holdout: pd.DataFrame, column: str) -> float:
    """How well one column alone separates churners on the holdout (0.5 none, 1.0 perfect):
    a category by its training churn rate, a number by its value (either direction)."""
    y = holdout[TARGET].to_numpy()
    if column in CATEGORICAL_FEATURES:
        rate = train.groupby(column, observed=True)[TARGET].mean()
        score = holdout[column].astype(object).map(rate).astype(float).fillna(rate.mean())
        return float(roc_auc_score(y, score))
    auc = float(roc_auc_score(y, holdout[column].astype(float)))
    return max(auc, 1.0 - auc)


def leak_check(
    shares: dict[str, float],
    aucs: dict[str, float],
    share_alert: float,
    auc_alert: float,
) -> list[str]:
    """Columns that look leaky: one column alone carries more than ``share_alert`` of all
    attribution *and* separates the classes nearly perfectly on its own (AUC ≥ ``auc_alert``).
    Real churn drivers are partial; a feature made from the label is almost the label."""
    return [c for c in shares if shares[c] >= share_alert and aucs[c] >= auc_alert]


def shares(importance: dict[str, float]) -> dict[str, float]:
    """Each column's share of the total (negative permutation scores count as 0)."""
    clipped = {c: max(v, 0.0) for c, v in importance.items()}
    total = sum(clipped.values()) or 1.0
    return {c: v / total for c, v in clipped.items()}


def ranking(importance: dict[str, float]) -> list[str]:
    """Columns from most to least important (ties broken by name, deterministic)."""
    return sorted(importance, key=lambda c: (-importance[c], c))


def spearman(a: dict[str, float], b: dict[str, float]) -> float:
    """Rank correlation of two importances over the same columns."""
    from scipy.stats import spearmanr

    cols = sorted(a)
    return float(spearmanr([a[c] for c in cols], [b[c] for c in cols]).statistic)


def recall_by_group(
    frame: pd.DataFrame, proba: np.ndarray, column: str, threshold: float
) -> list[dict[str, Any]]:
    """Recall (churners caught) and churn counts per category of ``column``."""
    rows = []
    flagged = proba >= threshold
    for group in frame[column].cat.categories:
        churners = (frame[column] == group).to_numpy() & (frame[TARGET].to_numpy() == 1)
        caught = int((flagged & churners).sum())
        n = int(churners.sum())
        rows.append(
            {
                "group": str(group),
                "customers": int((frame[column] == group).sum()),
                "churners": n,
                "caught": caught,
                "recall": caught / n if n else float("nan"),
            }
        )
    return rows


def explained_share(values: np.ndarray, own: pd.Series, categorical: bool) -> float:
    """η²: the share of the variance of one column's SHAP values explained by that column's own
    value (its categories; deciles for a number). Near 1 when the values really belong to the
    column, near 0 when they were mapped from another one."""
    groups = own.astype(object) if categorical else pd.Series(own).rank(method="first")
    if not categorical:
        groups = pd.qcut(groups, 10, labels=False)
    frame = pd.DataFrame({"v": np.asarray(values, dtype=float), "g": np.asarray(groups)})
    total = float(((frame["v"] - frame["v"].mean()) ** 2).sum())
    means = frame.groupby("g")["v"].agg(["mean", "size"])
    between = float((means["size"] * (means["mean"] - frame["v"].mean()) ** 2).sum())
    return between / total if total > 0 else 0.0


def _logodds(p: np.ndarray) -> np.ndarray:
    p = np.clip(p, 1e-12, 1 - 1e-12)
    return np.log(p / (1 - p))
