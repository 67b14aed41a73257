"""Smaller models: how much accuracy a smaller or faster model costs.

Each candidate is the churn pipeline with a different classifier size — a logistic regression
and random forests from a few shallow trees to many deep ones — trained on the same rows and
measured on the same holdout: ROC-AUC, the size of its skops file, the time to score one row
and a batch, in scikit-learn and, converted with ``skl2onnx``, in ONNX Runtime. The answer to
"can we serve something smaller?" is the smallest model within ``auc_budget`` of the best.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from labs.common.data import CATEGORICAL_FEATURES, FEATURES, NUMERIC_FEATURES, TARGET
from labs.common.model import TrainParams, train_model
from labs.common.tracking import model_bytes


@dataclass(frozen=True)
class Candidate:
    """A model size: ``logistic_regression`` or ``random_forest:<trees>:<max depth>``."""

    spec: str

    def train_params(self, seed: int) -> TrainParams:
        kind, *size = self.spec.split(":")
        if kind == "logistic_regression" and not size:
            return TrainParams(seed=seed)
        if kind == "random_forest" and len(size) == 2:
            trees, depth = (int(s) for s in size)
            return TrainParams("random_forest", n_estimators=trees, max_depth=depth, seed=seed)
        raise ValueError(
            f"model size {self.spec!r}: use 'logistic_regression' or "
            "'random_forest:<trees>:<depth>'"
        )


def train_candidates(
    specs: Sequence[str], train: pd.DataFrame, seed: int
) -> list[tuple[str, Any, float]]:
    """(spec, fitted pipeline, training seconds) for each candidate."""
    out = []
    for spec in specs:
        params = Candidate(spec).train_params(seed)
        start = time.perf_counter()
        model = train_model(train, params)
        out.append((spec, model, time.perf_counter() - start))
    return out


def _best_ms(fn: Any, repeats: int) -> float:
    fn()  # warm
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return float(np.min(times) * 1e3)


def onnx_session(model: Any) -> tuple[Any, int]:
    """The pipeline converted to ONNX: an inference session and the model's size in bytes."""
    import onnxruntime as ort
    from skl2onnx import convert_sklearn
    from skl2onnx.common.data_types import FloatTensorType, StringTensorType

    inputs = [(c, FloatTensorType([None, 1])) for c in NUMERIC_FEATURES]
    inputs += [(c, StringTensorType([None, 1])) for c in CATEGORICAL_FEATURES]
    onx = convert_sklearn(model, initial_types=inputs, options={"zipmap": False})
    data = onx.SerializeToString()
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1  # one core per replica, as the servers here run
    options.inter_op_num_threads = 1
    return ort.InferenceSession(data, options, providers=["CPUExecutionProvider"]), len(data)


def onnx_feed(frame: pd.DataFrame) -> dict[str, np.ndarray]:
    feed = {c: frame[c].to_numpy(np.float32).reshape(-1, 1) for c in NUMERIC_FEATURES}
    feed |= {c: frame[c].astype(str).to_numpy().reshape(-1, 1) for c in CATEGORICAL_FEATURES}
    return feed


def learned_parameters(model: Any) -> int:
    """What the fitted model holds: its coefficients and intercepts, or its trees' nodes —
    what its size on disk and its scoring time grow with."""
    estimator = model.steps[-1][1] if hasattr(model, "steps") else model
    if hasattr(estimator, "estimators_"):
        return int(sum(tree.tree_.node_count for tree in estimator.estimators_))
    return int(estimator.coef_.size + estimator.intercept_.size)


def measure_candidates(
    trained: Sequence[tuple[str, Any, float]],
    holdout: pd.DataFrame,
    *,
    batch_rows: int,
    repeats: int,
    with_onnx: bool,
    train: pd.DataFrame | None = None,
) -> list[dict[str, Any]]:
    """Quality, size and latency of each trained candidate (see module doc); with ``train``,
    also its ROC-AUC on the rows it was trained on (what a careless comparison would rank)."""
    from sklearn.metrics import roc_auc_score

    x, y = holdout[list(FEATURES)], holdout[TARGET].to_numpy()
    one, batch = x.iloc[:1], x.iloc[:batch_rows]
    rows = []
    for spec, model, train_s in trained:
        proba = model.predict_proba(x)[:, 1]
        row: dict[str, Any] = {
            "model": spec,
            "roc_auc": float(roc_auc_score(y, proba)),
            "size_kb": len(model_bytes(model)) / 1024,
            "parameters": learned_parameters(model),
            "train_s": train_s,
            "sklearn_1_row_ms": _best_ms(lambda m=model: m.predict_proba(one), repeats),
            f"sklearn_{batch_rows}_rows_ms": _best_ms(
                lambda m=model: m.predict_proba(batch), max(3, repeats // 5)
            ),
        }
        if train is not None:
            fitted = model.predict_proba(train[list(FEATURES)])[:, 1]
            row["train_roc_auc"] = float(roc_auc_score(train[TARGET], fitted))
        if with_onnx:
            session, size = onnx_session(model)
            feed_one, feed_all = onnx_feed(one), onnx_feed(x)
            p_onnx = session.run(["probabilities"], feed_all)[0][:, 1]
            row |= {
                "onnx_size_kb": size / 1024,
                "onnx_1_row_ms": _best_ms(lambda s=session, f=feed_one: s.run(None, f), repeats),
                "onnx_max_abs_dp": float(np.max(np.abs(p_onnx - proba))),
            }
        rows.append(row)
    return rows


ChooseModel = Callable[[Sequence[dict[str, Any]], float], dict[str, Any]]


def smallest_within(rows: Sequence[dict[str, Any]], auc_budget: float) -> dict[str, Any]:
    """The smallest candidate (skops size) whose holdout ROC-AUC is within ``auc_budget`` of
    the best."""
    best = max(r["roc_auc"] for r in rows)
    eligible = [r for r in rows if r["roc_auc"] >= best - auc_budget]
    return min(eligible, key=lambda r: r["size_kb"])
