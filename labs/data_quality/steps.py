"""The data-quality lab's steps: incidents upstream, the gate, the signature check, the hotfix,
the stream replay and the data versions. ``lab.py`` tells the story with them."""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from labs.common.data import (
    CATEGORICAL_FEATURES,
    CATEGORIES,
    DAY,
    FEATURES,
    NUMERIC_FEATURES,
    TARGET,
    Incident,
    ScheduledEvent,
    apply_incident,
    make_production_stream,
)
from labs.common.model import quality_metrics, split_xy
from labs.common.schema import BatchExpectations, BatchSplit, batch_schema, split_batch

KEY = "customer_id"
EXPERIMENT = "lab-data_quality"
CHARGES = "monthly_charges"


# --- upstream: batches as a source system sends them ---------------------------------------


def with_ids(frame: pd.DataFrame, first_id: int) -> pd.DataFrame:
    """The source system's customer ids, as the first column."""
    out = frame.reset_index(drop=True)
    out.insert(0, KEY, np.arange(first_id, first_id + len(out)))
    return out


def rename_categories(
    frame: pd.DataFrame, renames: Mapping[str, Mapping[str, str]]
) -> pd.DataFrame:
    """Upstream renames category values (e.g. ``credit-card`` → ``card``)."""
    out = frame.copy()
    for column, mapping in renames.items():
        out[column] = out[column].astype(str).replace(dict(mapping))
    return out


def unit_change(frame: pd.DataFrame, factor: float, seed: int) -> pd.DataFrame:
    """``monthly_charges`` × ``factor`` (the generator's own incident knob)."""
    return apply_incident(frame, Incident("unit_change", CHARGES, factor=factor), seed)


@dataclass(frozen=True)
class DirtyBatch:
    """A batch with planted bad rows; ``planted`` maps each bad row position to its problem."""

    frame: pd.DataFrame
    planted: dict[int, str]


def plant_problems(frame: pd.DataFrame, rate: float, seed: int) -> DirtyBatch:
    """Break a ``rate`` share of rows, each in one of six ways the contract must catch.

    Each bad row gets exactly one problem, at a distinct position, so what the gate
    quarantines can be compared row by row with what was planted.
    """
    out = frame.copy()
    out["age"] = out["age"].astype(object)
    out[CHARGES] = out[CHARGES].astype(object)
    out["contract"] = out["contract"].astype(str)
    rng = np.random.default_rng([seed, 2711])
    n_bad = max(6, int(round(rate * len(out))))
    # Never row 0: a duplicate key copies it, and the first occurrence stays valid.
    rows = rng.choice(np.arange(1, len(out)), size=n_bad, replace=False)
    kinds = ("missing", "out_of_range", "unknown_category", "wrong_type", "duplicate_key",
             "lifetime_rule")  # fmt: skip
    planted: dict[int, str] = {}
    for i, row in enumerate(sorted(rows)):
        kind = kinds[i % len(kinds)]
        planted[int(row)] = kind
        if kind == "missing":
            out.loc[row, "age"] = None
        elif kind == "out_of_range":
            out.loc[row, "support_calls"] = -3
        elif kind == "unknown_category":
            out.loc[row, "contract"] = "monthly"
        elif kind == "wrong_type":
            out.loc[row, CHARGES] = "n/a"
        elif kind == "duplicate_key":
            out.loc[row, KEY] = out.loc[0, KEY]
        else:  # 20 years a customer at 19: each value is in range, the pair is impossible
            out.loc[row, ["tenure_months", "age"]] = [240, 19]
    return DirtyBatch(out, planted)


# --- the gate ------------------------------------------------------------------------------

# A gate: a batch (and the batch-level expectations, if any) → valid and quarantined rows.
Gate = Callable[..., BatchSplit]
# A hotfix: a batch and the reference medians → the converted batch and what it found.
Hotfix = Callable[[pd.DataFrame, Mapping[str, float]], tuple[pd.DataFrame, dict[str, Any]]]


def gate(
    frame: pd.DataFrame, expectations: BatchExpectations | None = None, *, key: str | None = KEY
) -> BatchSplit:
    """Split a labelled batch with the shared contract (``labs.common.schema``)."""
    return split_batch(frame, labelled=True, key=key, expectations=expectations)


def one_pass_checks(frame: pd.DataFrame, *, lazy: bool = True) -> list[str]:
    """The kinds of failure one pandera pass over the contract reports (no second pass, no
    gate logic). ``lazy`` collects every failure; an eager pass stops at the first."""
    import pandera.errors

    try:
        batch_schema(key=KEY).validate(frame, lazy=lazy)
    except pandera.errors.SchemaErrors as err:
        checks = err.failure_cases["check"].astype(str)
    except pandera.errors.SchemaError as err:
        checks = pd.Series([str(getattr(err.check, "name", None) or err.check)])
    else:
        return []
    kinds = {
        "missing": checks.str.startswith("not_nullable"),
        "out_of_range": checks.str.startswith("in_range"),
        "unknown_category": checks.str.startswith("isin"),
        "wrong_type": checks.str.startswith("coerce_dtype"),
        "duplicate_key": checks == "field_uniqueness",
        "lifetime_rule": checks == "tenure_within_lifetime",
    }
    return sorted(k for k, hit in kinds.items() if hit.any())


def loses_nothing(frame: pd.DataFrame, split: BatchSplit) -> dict[str, int]:
    """Row-for-row accounting: every input row is in exactly one side, unchanged."""
    data = frame.reset_index(drop=True)
    sides = pd.concat([split.valid, split.quarantined.drop(columns="reasons")])
    counts = pd.Series(sides.index).value_counts()
    missing = sorted(set(data.index) - set(sides.index))
    duplicated = int((counts > 1).sum())
    rebuilt = sides.sort_index()
    same = (
        not missing
        and not duplicated
        and rebuilt.astype(str).equals(data.loc[rebuilt.index].astype(str))
    )
    return {
        "input_rows": len(data),
        "valid_rows": len(split.valid),
        "quarantined_rows": len(split.quarantined),
        "missing_rows": len(missing),
        "duplicated_rows": duplicated,
        "rows_changed": 0 if same else int(len(data)),
    }


# --- model outputs ---------------------------------------------------------------------------


def probabilities(model: Any, frame: pd.DataFrame) -> np.ndarray:
    """The churn probability of each row; none for a batch the gate quarantined whole."""
    x = frame[list(FEATURES)]
    if x.empty:  # scikit-learn refuses 0 rows; nothing passed the gate, nothing is scored
        return np.empty(0)
    return model.predict_proba(x)[:, 1]


def flip_rate(before: np.ndarray, after: np.ndarray, threshold: float = 0.5) -> float:
    """Share of customers whose churn decision changes."""
    return float(np.mean((before >= threshold) != (after >= threshold)))


def reference_medians(reference: pd.DataFrame) -> dict[str, float]:
    """Each numeric feature's median in the reference (training) data: what a unit is judged by."""
    return {name: float(reference[name].astype(float).median()) for name in NUMERIC_FEATURES}


def estimate_unit_factor(values: pd.Series, reference_median: float) -> float:
    """The unit change a column went through, estimated from the data: the ratio of its median
    to the reference median, snapped to a power of ten. Units differ by powers of ten (euros,
    cents, thousands); a real drift moves the median by far less than ×√10, so it stays 1."""
    median = float(pd.to_numeric(values, errors="coerce").median())
    if not math.isfinite(median) or median <= 0 or reference_median <= 0:
        return 1.0
    return float(10.0 ** round(math.log10(median / reference_median)))


def estimate_renames(frame: pd.DataFrame) -> dict[str, dict[str, str]]:
    """Category values the contract does not know, mapped back to the one it expects and no
    longer sees — only when that pairing is unambiguous (one unknown, one gone)."""
    found: dict[str, dict[str, str]] = {}
    for column in CATEGORICAL_FEATURES:
        seen = set(frame[column].dropna().astype(str))
        allowed = set(CATEGORIES[column])
        unknown, gone = sorted(seen - allowed), sorted(allowed - seen)
        if len(unknown) == len(gone) == 1:
            found[column] = {unknown[0]: gone[0]}
    return found


def hotfix_units(
    frame: pd.DataFrame, medians: Mapping[str, float]
) -> tuple[pd.DataFrame, dict[str, Any]]:
    """The versioned conversion (v2 of the ingestion): ``monthly_charges`` divided by the unit
    factor estimated from the batch against the reference, renamed categories mapped back.
    Returns the converted batch and what it found (the factor, the renames)."""
    factor = estimate_unit_factor(frame[CHARGES], medians[CHARGES])
    renames = estimate_renames(frame)
    return convert(frame, factor, renames), {"unit_factor": factor, "renames": renames}


def convert(
    frame: pd.DataFrame, factor: float, renames: Mapping[str, Mapping[str, str]]
) -> pd.DataFrame:
    """``monthly_charges`` / ``factor`` (back to euro cents precision), categories renamed."""
    out = frame.copy()
    if factor != 1.0:
        out[CHARGES] = (out[CHARGES].astype(float) / factor).round(2)
    for column, mapping in renames.items():
        out[column] = out[column].astype(str).replace(dict(mapping))
    return out


# --- MLflow: what the model's signature checks (run in a sidecar process) -------------------


def signature_verdicts(
    model: Any,
    sample: pd.DataFrame,
    batches: dict[str, pd.DataFrame],
    input_check: Callable[[pd.DataFrame], None] | None = None,
) -> dict:
    """Log ``model`` with a signature inferred from ``sample`` and send each batch through
    MLflow's pyfunc input check (what ``mlflow models serve`` runs before predicting), then
    through ``input_check`` if the served model has one of its own (it raises to refuse).

    Returns per batch ``{"accepted": bool, "error": str, "proba": [...]}`` and the run id.
    The model is loaded back with the project's safe skops loader; MLflow's own sklearn
    loader would need pickle deserialisation switched on.
    """
    import mlflow
    from mlflow.models import infer_signature

    from labs.common.tracking import load_sklearn_model, log_sklearn_model, start_run

    # The signature describes the batch as the source system sends it: ints, floats, strings.
    x = as_sent(sample[list(FEATURES)].head(50))
    signature = infer_signature(x, model.predict_proba(x)[:, 1])
    with start_run(EXPERIMENT, "model-with-signature") as run:
        info = log_sklearn_model(model, signature=signature)
    loaded = load_sklearn_model(info.model_uri)

    class _Churn:
        def predict(self, data: pd.DataFrame, params: Any = None) -> np.ndarray:
            if input_check is not None:
                input_check(data)
            return loaded.predict_proba(data[list(FEATURES)])[:, 1]

    served = mlflow.pyfunc.PyFuncModel(
        model_meta=mlflow.models.Model.load(info.model_uri), model_impl=_Churn()
    )
    verdicts: dict[str, Any] = {}
    for name, batch in batches.items():
        features = as_sent(batch.drop(columns=[c for c in (KEY, TARGET, DAY) if c in batch]))
        try:
            proba = np.asarray(served.predict(features), dtype=float)
        except Exception as err:  # the signature refused the batch: that is the measurement
            verdicts[name] = {"accepted": False, "error": str(err).splitlines()[0][:200]}
        else:
            verdicts[name] = {"accepted": True, "error": "", "proba": proba.tolist()}
    return {"run_id": run.info.run_id, "verdicts": verdicts}


def as_sent(frame: pd.DataFrame) -> pd.DataFrame:
    """Categories as plain strings, as they arrive over the wire (JSON, CSV)."""
    out = frame.copy()
    for column in out.select_dtypes("category").columns:
        out[column] = out[column].astype(str)
    return out


# --- the stream: incident, gate, hotfix, recovery --------------------------------------------


def replay_stream(
    model: Any,
    *,
    days: int,
    rows_per_day: int,
    incident_day: int,
    hotfix_day: int,
    factor: float,
    renames: Mapping[str, Mapping[str, str]],
    expectations: BatchExpectations | None,
    medians: Mapping[str, float],
    max_bad_share: float,
    seed: int,
    gate_with: Gate = gate,
    hotfix: Hotfix = hotfix_units,
) -> pd.DataFrame:
    """Replay daily batches: from ``incident_day`` upstream sends cents and renamed categories;
    from ``hotfix_day`` the versioned conversion runs before the gate (it estimates the unit
    from each day's batch). Per day: the quality of the model fed the raw batch (no gate), and
    what the gated path did."""
    events = [ScheduledEvent(start_day=incident_day, incidents=[
        Incident("unit_change", CHARGES, factor=factor)])]  # fmt: skip
    stream = make_production_stream(days, rows_per_day, seed=seed, events=events)
    rows = []
    for day, batch in stream.groupby(DAY, sort=True):
        batch = with_ids(batch.drop(columns=DAY), first_id=int(day) * rows_per_day)
        broken = int(day) >= incident_day
        if broken:
            batch = rename_categories(batch, renames)
        fixed = int(day) >= hotfix_day
        ingested, found = hotfix(batch, medians) if fixed else (batch, {"unit_factor": 1.0})
        _, y = split_xy(batch)
        raw = quality_metrics(y, probabilities(model, batch))
        split = gate_with(ingested, expectations)
        refused = bool(split.refusal(max_bad_share))
        served = None if refused else quality_metrics(
            split.valid[TARGET], probabilities(model, split.valid))  # fmt: skip
        rows.append(
            {
                "day": int(day),
                "phase": "hotfix" if broken and fixed else "incident" if broken else "before",
                "accuracy_ungated": raw["accuracy"],
                "predicted_churn_ungated": raw["predicted_churn_rate"],
                "unit_factor_found": found["unit_factor"],
                "gate_refused": refused,
                "quarantined_rows": len(split.quarantined),
                "accuracy_served": np.nan if served is None else served["accuracy"],
                "predicted_churn_served": np.nan
                if served is None
                else served["predicted_churn_rate"],
                "churn_rate": raw["churn_rate"],
            }
        )
    return pd.DataFrame(rows)
