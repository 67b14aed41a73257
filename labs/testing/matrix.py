"""Which kind of test catches which planted fault: every kind of model test run on every
candidate it can run on, so each kind is shown catching the fault planted for it — and missing
the faults planted for the others.

One fault per kind, each a single defect:

- ``batch_statistics`` (for the unit tests): the correct classifier behind a transform that
  scales numbers with the scored batch's statistics (one-hot columns as the model has them);
- ``renamed_column`` (integration): a model trained on an extract whose ``monthly_charges`` was
  called ``monthly_charge`` — in process, on its own column names, it is a good model;
- ``label_noise`` (performance gate): the correct recipe trained on partly scrambled labels;
- ``slow_ensemble`` (stress): a bagged ensemble of identical logistic regressions — the correct
  model's answers at many times the work per request;
- ``no_schema`` (robustness): the correct model called on whatever arrives, without the serving
  schema in front.

Unit tests, the performance gate and the robustness tests run in process on every candidate;
integration (over HTTP) and stress (a locust ramp) run on the served ones. A cell that was
not run is ``None`` — never counted as a miss.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from labs.common.data import FEATURES

KINDS = ("unit", "integration", "gate", "stress", "robustness")
FAULTS = {
    "batch_statistics": "unit",
    "renamed_column": "integration",
    "label_noise": "gate",
    "slow_ensemble": "stress",
    "no_schema": "robustness",
}
ROWS = ("correct", *FAULTS)
TOLERANCE_DP = 1e-9  # the served scorer reproduces predict_proba to this (checked at load)


@dataclass(frozen=True)
class Candidate:
    """A model as each kind of test meets it: the transform the unit tests pin (and the
    classifier behind it), its probabilities in process, and the scorer production calls."""

    name: str
    transform: Callable[[pd.DataFrame], np.ndarray]
    classifier: Any
    predict: Callable[[pd.DataFrame], np.ndarray]
    scorer: Callable[[list[dict[str, Any]]], np.ndarray]


@dataclass(frozen=True)
class Served:
    """A candidate deployed by the serving app at ``url`` — and the same model in process."""

    url: str
    predict: Callable[[pd.DataFrame], np.ndarray]


class ProbaModel:
    """``predict_proba`` over a p(churn) function: what a scorer wraps."""

    def __init__(self, predict: Callable[[pd.DataFrame], np.ndarray]) -> None:
        self.predict = predict

    def predict_proba(self, frame: pd.DataFrame) -> np.ndarray:
        p = np.asarray(self.predict(frame), dtype=float)
        return np.column_stack([1 - p, p])


def pipeline_candidate(name: str, model: Any, scorer_for: Callable[[Any], Any]) -> Candidate:
    """A fitted scikit-learn pipeline as a candidate; ``scorer_for`` puts it behind production's
    entrance (the schema, or nothing)."""
    from labs.testing.unit import fitted_transform

    return Candidate(
        name,
        fitted_transform(model.named_steps["preprocess"]),
        model.named_steps["classifier"],
        lambda frame: model.predict_proba(frame[list(FEATURES)])[:, 1],
        scorer_for(model),
    )


def candidates(
    models: dict[str, Any], scorer_for: Callable[[Any], Any], raw_scorer: Callable[[Any], Any]
) -> dict[str, Candidate]:
    """The correct candidate and the five faults (``models``: correct, renamed_column,
    label_noise, slow_ensemble — fitted pipelines)."""
    from labs.testing.integration import RENAMED
    from labs.testing.unit import batch_scaled_transform

    correct = models["correct"]
    clf = correct.named_steps["classifier"]
    renamed = models["renamed_column"]
    renamed_pre = renamed.named_steps["preprocess"]
    own_columns = list(renamed.feature_names_in_)

    batch_scaled = batch_scaled_transform(correct.named_steps["preprocess"])

    def batch_stats_predict(frame: pd.DataFrame) -> np.ndarray:
        return clf.predict_proba(batch_scaled(frame))[:, 1]

    def renamed_transform(frame: pd.DataFrame) -> np.ndarray:
        # its authors' own tests feed it their column names: in process it is a good model
        return np.asarray(
            renamed_pre.transform(frame.rename(columns=RENAMED)[own_columns]), dtype=float
        )

    def renamed_predict(frame: pd.DataFrame) -> np.ndarray:
        return renamed.predict_proba(frame.rename(columns=RENAMED)[own_columns])[:, 1]

    return {
        "correct": pipeline_candidate("correct", correct, scorer_for),
        "batch_statistics": Candidate(
            "batch_statistics", batch_scaled, clf, batch_stats_predict,
            scorer_for(ProbaModel(batch_stats_predict)),
        ),
        "renamed_column": Candidate(
            "renamed_column", renamed_transform, renamed.named_steps["classifier"],
            renamed_predict, scorer_for(ProbaModel(renamed_predict)),
        ),
        "label_noise": pipeline_candidate("label_noise", models["label_noise"], scorer_for),
        "slow_ensemble": pipeline_candidate("slow_ensemble", models["slow_ensemble"], scorer_for),
        "no_schema": pipeline_candidate("no_schema", correct, raw_scorer),
    }  # fmt: skip


# --- what each kind of test says about one candidate: True = it fails the candidate ----------


def unit_fails(results: list[Any]) -> bool:
    return not all(r.passed for r in results)


def integration_fails(round_trip: dict[str, Any]) -> bool:
    return (
        round_trip["failed_requests"] > 0
        or not round_trip["max_abs_dp"] <= TOLERANCE_DP
        or round_trip["labels_differing"] > 0
    )


def gate_fails(verdict: Any) -> bool:
    return not verdict.passed


def stress_fails(ramp: Any, params: Any) -> bool:
    """The p99 budget (or 1 % errors) is broken at or below the load the service must carry
    with headroom: the ramp's top step divided by ``knee_ratio``."""
    return ramp.knee_users is not None and ramp.knee_users * params.knee_ratio <= max(
        params.stress_users
    )


def robustness_fails(r: dict[str, Any], params: Any) -> bool:
    return not (
        r["invariance"]["flipped_share"] <= params.invariance_max_flip
        and r["directional"]["violation_share"] == 0
        and r["corrupt"]["refused"] == r["corrupt"]["cases"]
    )


def catches(found: dict[str, dict[str, Any]], params: Any) -> dict[str, dict[str, bool | None]]:
    """Candidate → kind → does that kind of test fail it (None: not run on it); ``found`` is
    kind → candidate → that test's result."""
    table: dict[str, dict[str, bool | None]] = {}
    for row in ROWS:
        unit = found["unit"].get(row)
        inter = found["integration"].get(row)
        gate = found["gate"].get(row)
        ramp = found["stress"].get(row)
        robust = found["robustness"].get(row)
        table[row] = {
            "unit": None if unit is None else unit_fails(unit),
            "integration": None if inter is None else integration_fails(inter),
            "gate": None if gate is None else gate_fails(gate),
            "stress": None if ramp is None else stress_fails(ramp, params),
            "robustness": None if robust is None else robustness_fails(robust, params),
        }
    return table


def verdict(table: dict[str, dict[str, bool | None]]) -> dict[str, Any]:
    """Diagonal caught, every other cell run on a fault missed, nothing flags the correct
    candidate; and each fault met by at least two other kinds (so a miss is evidence)."""
    missed_own = [f for f, kind in FAULTS.items() if table[f][kind] is not True]
    caught_by_other = [
        f"{kind} catches {f}"
        for f, own in FAULTS.items()
        for kind in KINDS
        if kind != own and table[f][kind] is True
    ]
    false_alarms = [k for k in KINDS if table["correct"][k] is True]
    others_run = {
        f: sum(table[f][k] is not None for k in KINDS if k != own) for f, own in FAULTS.items()
    }
    return {
        "own_fault_missed": missed_own,
        "caught_by_another_kind": caught_by_other,
        "false_alarms_on_correct": false_alarms,
        "other_kinds_run_per_fault": others_run,
        "passed": not missed_own
        and not caught_by_other
        and not false_alarms
        and min(others_run.values()) >= 2,
    }
