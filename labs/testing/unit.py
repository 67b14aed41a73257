"""Unit tests of the feature transform's contract, example-based and property-based
(hypothesis), run against two transforms: the fitted preprocessing step of the model, and a
hand-written one with two planted defects (statistics of the batch being scored, one-hot
columns in the spec's category order instead of the model's).

The properties are the transform's contract, stated once and checked on batches hypothesis
invents: the output has one finite float row per input row and the model's column count; row
order does not change any row's prediction; a row's prediction does not depend on which other
rows share its batch. One example-based test pins the one-hot column of each category.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from labs.common.data import CATEGORICAL_FEATURES, CATEGORIES, FEATURES, NUMERIC_FEATURES
from labs.common.data import NUMERIC_RANGES as R

Transform = Callable[[pd.DataFrame], np.ndarray]
PROPERTIES = ("shape_and_dtype", "row_order", "batch_independence", "category_columns")


@dataclass(frozen=True)
class PropertyResult:
    """One contract test on one transform: did it hold, on how many examples, and the
    size of the first batch hypothesis found that breaks it (0 if none)."""

    name: str
    passed: bool
    examples: int
    failing_batch_rows: int
    error: str


def fitted_transform(preprocess: Any) -> Transform:
    """The model's own preprocessing step, fitted on training data, as a transform."""
    return lambda batch: np.asarray(preprocess.transform(batch[list(FEATURES)]), dtype=float)


def batch_statistics_transform(batch: pd.DataFrame) -> np.ndarray:
    """The planted defect: scale with the scored batch's mean and standard deviation, and
    one-hot encode in the order the data spec lists categories (the model's encoder sorts)."""
    numeric = batch[list(NUMERIC_FEATURES)].to_numpy(dtype=float)
    std = numeric.std(axis=0)
    # The usual guard of hand-written scaling: a constant column is not divided by zero.
    scaled = (numeric - numeric.mean(axis=0)) / np.where(std > 0, std, 1.0)
    onehot = [
        (batch[name].astype(str).to_numpy()[:, None] == np.array(list(CATEGORIES[name]))).astype(
            float
        )
        for name in CATEGORICAL_FEATURES
    ]
    return np.hstack([scaled, *onehot])


def batch_scaled_transform(preprocess: Any) -> Transform:
    """One planted defect alone: the fitted step's one-hot columns, but numbers scaled with the
    scored batch's mean and standard deviation instead of the training data's."""

    def transform(batch: pd.DataFrame) -> np.ndarray:
        out = np.asarray(preprocess.transform(batch[list(FEATURES)]), dtype=float)
        numeric = batch[list(NUMERIC_FEATURES)].to_numpy(dtype=float)
        std = numeric.std(axis=0)
        # the build puts the numeric columns first, in NUMERIC_FEATURES order
        out[:, : len(NUMERIC_FEATURES)] = (numeric - numeric.mean(axis=0)) / np.where(
            std > 0, std, 1.0
        )
        return out

    return transform


def model_column_order(preprocess: Any) -> list[str]:
    """The one-hot column names the fitted model expects, in its order."""
    return [str(n).split("__", 1)[1] for n in preprocess.get_feature_names_out()]


def check_category_columns(transform: Transform, expected_columns: list[str]) -> PropertyResult:
    """Example-based: a customer with category c of feature f has its 1 in column ``f_c``."""
    rows = []
    for i in range(4):  # every category of every feature appears at least once
        row: dict[str, Any] = {n: int((R[n][0] + R[n][1]) / 2) for n in NUMERIC_FEATURES}
        row["monthly_charges"] = 50.0 + 10 * i
        for name in CATEGORICAL_FEATURES:
            values = list(CATEGORIES[name])
            row[name] = values[i % len(values)]
        rows.append(row)
    batch = pd.DataFrame(rows, columns=list(FEATURES))
    out = transform(batch)
    wrong = 0
    for r, row in enumerate(rows):
        for name in CATEGORICAL_FEATURES:
            column = expected_columns.index(f"{name}_{row[name]}")
            wrong += int(out[r, column] != 1.0)
    return PropertyResult(
        "category_columns",
        wrong == 0,
        len(rows),
        len(rows) if wrong else 0,
        f"{wrong} one-hot cells in the wrong column" if wrong else "",
    )


def check_properties(
    transform: Transform,
    classifier: Any,
    n_columns: int,
    max_examples: int,
    max_batch_rows: int = 12,
) -> list[PropertyResult]:
    """Run the three hypothesis properties on ``transform`` followed by ``classifier``, on
    batches of 1 … ``max_batch_rows`` customers."""
    from hypothesis import HealthCheck, Phase, Verbosity, given, settings
    from hypothesis import strategies as st

    row = st.fixed_dictionaries(
        {
            "tenure_months": st.integers(*map(int, R["tenure_months"])),
            "monthly_charges": st.floats(*R["monthly_charges"]).map(lambda v: round(v, 2)),
            "support_calls": st.integers(0, 12),
            "age": st.integers(*map(int, R["age"])),
            **{name: st.sampled_from(list(CATEGORIES[name])) for name in CATEGORICAL_FEATURES},
        }
    )
    batches = st.lists(row, min_size=1, max_size=max_batch_rows).map(
        lambda rows: pd.DataFrame(rows, columns=list(FEATURES))
    )
    config = settings(
        max_examples=max_examples,
        derandomize=True,
        database=None,
        deadline=None,
        verbosity=Verbosity.quiet,
        suppress_health_check=list(HealthCheck),
        print_blob=False,
        # No shrinking: it would replay hundreds of batches (tens of seconds) to report a
        # smaller one; the first failing batch is evidence enough for a gate.
        phases=(Phase.explicit, Phase.generate),
    )

    def predict(batch: pd.DataFrame) -> np.ndarray:
        return classifier.predict_proba(transform(batch))[:, 1]

    def shape_and_dtype(batch: pd.DataFrame) -> None:
        x = transform(batch)
        assert x.shape == (len(batch), n_columns), f"shape {x.shape}"
        assert x.dtype == np.float64, f"dtype {x.dtype}"
        assert np.all(np.isfinite(x)), "non-finite features"
        p = predict(batch)
        assert p.shape == (len(batch),) and np.all((p >= 0) & (p <= 1))

    def row_order(batch: pd.DataFrame, order: list[int]) -> None:
        p = predict(batch)
        shuffled = predict(batch.iloc[order].reset_index(drop=True))
        assert np.allclose(shuffled, p[order], rtol=0, atol=1e-12), "order changes predictions"

    def batch_independence(batch: pd.DataFrame) -> None:
        # the first row scored alone, and the others without it, must score as in the batch
        p = predict(batch)
        alone = predict(batch.iloc[:1])
        rest = predict(batch.iloc[1:]) if len(batch) > 1 else p[1:]
        got = np.concatenate([alone, rest])
        assert np.allclose(got, p, rtol=0, atol=1e-12), "a row's score depends on its batch"

    results = []
    for name, test, strategy in (
        ("shape_and_dtype", shape_and_dtype, {"batch": batches}),
        (
            "row_order",
            row_order,
            {
                "batch": batches,
                "order": st.integers(0, 2**32 - 1),
            },
        ),
        ("batch_independence", batch_independence, {"batch": batches}),
    ):
        results.append(_run_property(name, test, strategy, config, given))
    return results


def _run_property(
    name: str, test: Callable[..., None], strategy: dict[str, Any], config: Any, given: Any
) -> PropertyResult:
    calls = {"examples": 0, "failing_rows": 0}

    def wrapped(**kwargs: Any) -> None:
        calls["examples"] += 1
        batch = kwargs["batch"]
        if "order" in kwargs:  # a permutation of this batch, drawn from the integer
            kwargs["order"] = list(np.random.default_rng(kwargs["order"]).permutation(len(batch)))
        try:
            test(**kwargs)
        except Exception:
            calls["failing_rows"] = len(batch)
            raise

    runner = config(given(**strategy)(wrapped))
    try:
        runner()
    except Exception as err:  # hypothesis re-raises the shrunk failure
        message = (str(err).strip().splitlines() or [type(err).__name__])[0][:160]
        return PropertyResult(name, False, calls["examples"], calls["failing_rows"], message)
    return PropertyResult(name, True, calls["examples"], 0, "")
