"""Behavioural tests in the CheckList style, on two candidates: the logistic regression behind
the serving schema, and an overfit, unvalidated candidate (a fully grown decision tree on the
same features, called directly).

- **Invariance**: nudging ``age`` — a feature the true churn model ignores — by a year or two
  should flip almost no predicted label.
- **Directional expectation**: one more support call must never lower the churn risk (the
  true model raises it with every call).
- **Corrupt input**: missing, non-numeric, out-of-range or unknown values get a clear refusal
  naming the field (or a documented imputation) — never a crash, never a silent score.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import pandas as pd

from labs.common.data import FEATURES, NUMERIC_RANGES, TARGET
from labs.common.model import TrainParams, build_model

Scorer = Callable[[list[dict[str, Any]]], np.ndarray]

# (case, field, bad value): what upstream bugs send
CORRUPTIONS: tuple[tuple[str, str, Any], ...] = (
    ("missing value (null)", "monthly_charges", None),
    ("not a number (NaN)", "monthly_charges", float("nan")),
    ("number as text", "tenure_months", "12"),
    ("garbage text", "support_calls", "n/a"),
    ("negative age", "age", -5),
    ("unit change ×1000", "monthly_charges", 70_000.0),
    ("unknown category", "contract", "weekly"),
    ("column missing", "payment_method", KeyError),
)


def overfit_tree(train: pd.DataFrame, seed: int) -> Any:
    """The defective candidate: the same preprocessing, a decision tree grown to purity."""
    from sklearn.tree import DecisionTreeClassifier

    model = build_model(TrainParams()).set_params(
        classifier=DecisionTreeClassifier(random_state=seed)
    )
    return model.fit(train[list(FEATURES)], train[TARGET])


def raw_scorer(model: Any) -> Scorer:
    """Call the model on whatever arrives (no validation): the defect."""
    return lambda rows: model.predict_proba(pd.DataFrame(rows))[:, 1]


def validated_scorer(model: Any) -> Scorer:
    """The serving schema first (strict types, ranges, categories), then the model."""
    from labs.common.serving.schema import PredictRequest

    def score(rows: list[dict[str, Any]]) -> np.ndarray:
        batch = PredictRequest.model_validate({"rows": rows})  # raises ValidationError
        frame = pd.DataFrame([r.model_dump() for r in batch.rows], columns=list(FEATURES))
        return model.predict_proba(frame)[:, 1]

    return score


def invariance(score: Scorer, rows: list[dict[str, Any]], seed: int, years: int) -> dict[str, Any]:
    """Share of labels flipped when age moves by up to ``years`` (a feature of weight 0)."""
    rng = np.random.default_rng(seed)
    low, high = NUMERIC_RANGES["age"]
    nudged = [
        {**r, "age": int(np.clip(r["age"] + rng.choice([-years, years]), low, high))} for r in rows
    ]
    before, after = score(rows), score(nudged)
    flipped = (before >= 0.5) != (after >= 0.5)
    return {
        "rows": len(rows),
        "flipped_share": float(flipped.mean()),
        "max_abs_dp": float(np.max(np.abs(after - before))),
    }


def directional(score: Scorer, rows: list[dict[str, Any]]) -> dict[str, Any]:
    """Share of customers whose churn risk falls when they make one more support call."""
    high = int(NUMERIC_RANGES["support_calls"][1])
    more = [{**r, "support_calls": min(r["support_calls"] + 1, high)} for r in rows]
    before, after = score(rows), score(more)
    lower = after < before - 1e-12
    return {
        "rows": len(rows),
        "violation_share": float(lower.mean()),
        "largest_drop": float(np.max(before - after)) if len(rows) else 0.0,
    }


def corrupt_inputs(score: Scorer, row: dict[str, Any]) -> dict[str, Any]:
    """Every corruption case on one valid row: ``refused`` (an error that names the field),
    ``crashed`` (any other exception: a 500 in production) or ``silent`` (a score)."""
    from pydantic import ValidationError

    outcomes: dict[str, str] = {}
    for case, name, value in CORRUPTIONS:
        bad = {k: v for k, v in row.items() if k != name}
        if value is not KeyError:
            bad[name] = value
        try:
            p = score([bad])
            outcomes[case] = f"silent (scored {float(p[0]):.3f})"
        except ValidationError as err:
            fields = {str(part) for e in err.errors() for part in e["loc"]}
            outcomes[case] = "refused" if name in fields else f"refused elsewhere: {err}"
        except Exception as err:  # what the serving layer would turn into a 500
            outcomes[case] = f"crashed ({type(err).__name__})"
    kinds = [o.split(" ")[0] for o in outcomes.values()]
    return {
        "cases": len(outcomes),
        "refused": kinds.count("refused"),
        "crashed": kinds.count("crashed"),
        "silent": kinds.count("silent"),
        "outcomes": outcomes,
    }
