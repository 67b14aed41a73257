"""The model behind the API: loaded from the registry safely, scored fast.

Why a "compiled" scorer: scikit-learn validates its input on every call (~5 ms for one row on
this machine), which dwarfs the arithmetic of a logistic regression (microseconds). At
start-up we read the fitted pipeline's scaler, one-hot categories and coefficients into numpy,
check that it reproduces ``predict_proba`` on a probe grid (to 1e-9), and use it; any other
model, or a mismatch, falls back to scikit-learn. The model stays the registered one.
"""

from __future__ import annotations

import itertools
import logging
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from labs.common.data import CATEGORICAL_FEATURES, CATEGORIES, FEATURES, NUMERIC_FEATURES
from labs.common.data import NUMERIC_RANGES as R
from labs.common.serving.schema import CustomerRow

logger = logging.getLogger("labs.common.serving.scoring")


class ModelLoadError(RuntimeError):
    """The model URI cannot be resolved or loaded; the server must not start without it."""


# --- the model ---------------------------------------------------------------------------

Scorer = Callable[[Sequence[CustomerRow]], np.ndarray]


@dataclass(frozen=True)
class LoadedModel:
    """A model ready to serve: the estimator, where it came from, and how it is scored."""

    model: Any
    uri: str
    name: str
    version: str
    scorer: Scorer
    scorer_kind: str  # "compiled-linear" | "sklearn"


def load_model(model_uri: str) -> LoadedModel:
    """Resolve ``model_uri`` (``models:/name@alias``, ``models:/name/3``, ``runs:/…``) and load
    it safely (skops, allowlisted types); a :class:`ModelLoadError` says what went wrong."""
    from labs.common.tracking import load_sklearn_model, tracking_uri

    try:
        name, version, pinned = _resolve_version(model_uri)
        # Load the resolved version, not the alias: the alias may move while we download.
        model = load_sklearn_model(pinned)
    except Exception as err:  # MLflow, skops and I/O errors all mean "cannot serve this"
        first_line = (str(err).strip().splitlines() or [""])[0][:300]
        raise ModelLoadError(
            f"cannot load model {model_uri!r} from tracking store {tracking_uri()}: "
            f"{type(err).__name__}: {first_line}"
        ) from err
    scorer, kind = build_scorer(model)
    return LoadedModel(model, model_uri, name, version, scorer, kind)


def warm_up() -> None:
    """Import what loading and scoring a model need (seconds), before the model is known."""
    import mlflow.artifacts  # noqa: F401
    import sklearn.compose  # noqa: F401
    import sklearn.ensemble  # noqa: F401
    import sklearn.linear_model  # noqa: F401
    import skops.io  # noqa: F401

    from labs.common.tracking import configure_tracking

    configure_tracking()


def _resolve_version(model_uri: str) -> tuple[str, str, str]:
    """(registered name, version, a URI pinned to that version)."""
    alias = re.fullmatch(r"models:/([^/@]+)@([^/@]+)", model_uri)
    numbered = re.fullmatch(r"models:/([^/@]+)/(\d+)", model_uri)
    if alias:
        import mlflow

        from labs.common.tracking import configure_tracking

        configure_tracking()
        found = mlflow.MlflowClient().get_model_version_by_alias(alias[1], alias[2])
        return alias[1], str(found.version), f"models:/{alias[1]}/{found.version}"
    if numbered:
        return numbered[1], numbered[2], model_uri
    return "", "unregistered", model_uri


def build_scorer(model: Any) -> tuple[Scorer, str]:
    """The fastest scorer that reproduces ``model.predict_proba`` exactly (see module doc)."""
    compiled = _compile_linear(model)
    if compiled is not None:
        probe = _probe_rows()
        expected = model.predict_proba(rows_frame(probe))[:, 1]
        gap = float(np.max(np.abs(compiled(probe) - expected)))
        if gap <= 1e-9:
            return compiled, "compiled-linear"
        logger.warning("compiled scorer differs from sklearn by %.3g; using sklearn", gap)
    return (lambda rows: model.predict_proba(rows_frame(rows))[:, 1]), "sklearn"


def _compile_linear(model: Any) -> Scorer | None:
    """numpy arithmetic for the churn pipeline (scaler + one-hot → logistic regression), or
    None if ``model`` is any other shape."""
    from sklearn.compose import ColumnTransformer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import OneHotEncoder, StandardScaler

    if not isinstance(model, Pipeline) or len(model.steps) != 2:
        return None
    pre, clf = model.steps[0][1], model.steps[1][1]
    if not isinstance(pre, ColumnTransformer) or not isinstance(clf, LogisticRegression):
        return None
    if list(clf.classes_) != [0, 1] or clf.coef_.shape[0] != 1:
        return None
    fitted = [(t, cols) for _, t, cols in pre.transformers_ if t != "drop"]
    if len(fitted) != 2:
        return None
    (scaler, num_cols), (encoder, cat_cols) = fitted
    if not (
        isinstance(scaler, StandardScaler)
        and isinstance(encoder, OneHotEncoder)
        and tuple(num_cols) == NUMERIC_FEATURES
        and tuple(cat_cols) == CATEGORICAL_FEATURES
        and encoder.drop is None
    ):
        return None
    n_num = len(NUMERIC_FEATURES)
    mean = scaler.mean_ if scaler.with_mean else np.zeros(n_num)
    scale = scaler.scale_ if scaler.with_std else np.ones(n_num)
    coef = clf.coef_[0]
    w_num, intercept = coef[:n_num], float(clf.intercept_[0])
    tables: list[dict[str, float]] = []
    start = n_num
    for categories in encoder.categories_:
        tables.append({str(c): float(coef[start + i]) for i, c in enumerate(categories)})
        start += len(categories)
    if start != len(coef):
        return None

    def score(rows: Sequence[CustomerRow]) -> np.ndarray:
        x = np.array([[getattr(r, f) for f in NUMERIC_FEATURES] for r in rows], dtype=float)
        z = ((x - mean) / scale) @ w_num
        for name, table in zip(CATEGORICAL_FEATURES, tables, strict=True):
            # a category unseen in training one-hot encodes to zeros (handle_unknown="ignore")
            z += np.array([table.get(getattr(r, name), 0.0) for r in rows])
        return 1.0 / (1.0 + np.exp(-(z + intercept)))

    return score


def rows_frame(rows: Sequence[CustomerRow]) -> Any:
    import pandas as pd

    return pd.DataFrame(
        {f: [getattr(r, f) for r in rows] for f in FEATURES}, columns=list(FEATURES)
    )


def _probe_rows() -> list[CustomerRow]:
    """Every category combination, with numbers from each range's ends and middle."""
    combos = itertools.product(*(CATEGORIES[c] for c in CATEGORICAL_FEATURES))
    rows = []
    for i, combo in enumerate(combos):
        values: dict[str, Any] = {}
        for j, name in enumerate(NUMERIC_FEATURES):
            low, high = R[name]
            value = low + (high - low) * (0.0, 0.1, 0.5, 1.0)[(i + j) % 4]
            values[name] = round(value, 2) if name == "monthly_charges" else int(value)
        rows.append(CustomerRow(**values, **dict(zip(CATEGORICAL_FEATURES, combo, strict=True))))
    return rows
