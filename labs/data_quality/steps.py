"""The data-quality lab's steps: incidents upstream, the gate, the signature check, the hotfix,
the stream replay and the data versions. ``lab.py`` tells the story with them."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from labs.common.data import (
    DAY,
    FEATURES,
    TARGET,
    Incident,
    ScheduledEvent,
    apply_incident,
    make_production_stream,
)
from labs.common.model import quality_metrics, split_xy
from labs.common.schema import BatchExpectations, BatchSplit, split_batch

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


def gate(
    frame: pd.DataFrame, expectations: BatchExpectations | None = None, *, key: str | None = KEY
) -> BatchSplit:
    """Split a labelled batch with the shared contract (``labs.common.schema``)."""
    return split_batch(frame, labelled=True, key=key, expectations=expectations)


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
    x = frame[list(FEATURES)]
    return model.predict_proba(x)[:, 1]


def flip_rate(before: np.ndarray, after: np.ndarray, threshold: float = 0.5) -> float:
    """Share of customers whose churn decision changes."""
    return float(np.mean((before >= threshold) != (after >= threshold)))


def hotfix_cents(frame: pd.DataFrame, renames: Mapping[str, Mapping[str, str]]) -> pd.DataFrame:
    """The versioned conversion ``cents_to_euros`` (v2 of the ingestion): divide the charges by
    100 and map the renamed categories back, until upstream ships its own fix."""
    out = frame.copy()
    out[CHARGES] = (out[CHARGES].astype(float) / 100).round(2)
    for column, mapping in renames.items():
        out[column] = out[column].astype(str).replace({new: old for old, new in mapping.items()})
    return out


# --- MLflow: what the model's signature checks (run in a sidecar process) -------------------


def signature_verdicts(model: Any, sample: pd.DataFrame, batches: dict[str, pd.DataFrame]) -> dict:
    """Log ``model`` with a signature inferred from ``sample`` and send each batch through
    MLflow's pyfunc input check (what ``mlflow models serve`` runs before predicting).

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
    expectations: BatchExpectations,
    max_bad_share: float,
    seed: int,
) -> pd.DataFrame:
    """Replay daily batches: from ``incident_day`` upstream sends cents and renamed categories;
    from ``hotfix_day`` the versioned conversion runs before the gate. Per day: the quality of
    the model fed the raw batch (no gate), and what the gated path did."""
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
        ingested = hotfix_cents(batch, renames) if broken and fixed else batch
        _, y = split_xy(batch)
        raw = quality_metrics(y, probabilities(model, batch))
        split = gate(ingested, expectations)
        refused = bool(split.refusal(max_bad_share))
        served = None if refused else quality_metrics(
            split.valid[TARGET], probabilities(model, split.valid))  # fmt: skip
        rows.append(
            {
                "day": int(day),
                "phase": "hotfix" if broken and fixed else "incident" if broken else "before",
                "accuracy_ungated": raw["accuracy"],
                "predicted_churn_ungated": raw["predicted_churn_rate"],
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


# --- data versions --------------------------------------------------------------------------


def md5_file(path: Path) -> str:
    """The md5 of a file's bytes: what DVC records for a tracked file."""
    return hashlib.md5(path.read_bytes()).hexdigest()


def write_version(frame: pd.DataFrame, directory: Path, name: str) -> dict[str, Any]:
    """Write one data version as CSV; return its manifest entry (path, md5, rows)."""
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / f"{name}.csv"
    frame.to_csv(path, index=False)
    return {"name": name, "path": path.name, "md5": md5_file(path), "rows": len(frame)}


def write_manifest(entries: list[dict[str, Any]], directory: Path) -> Path:
    path = directory / "versions.json"
    path.write_text(json.dumps({"versions": entries}, indent=2) + "\n")
    return path


def checkout(directory: Path, name: str) -> pd.DataFrame:
    """Go back to a recorded version: read it and refuse it if its bytes changed."""
    manifest = json.loads((directory / "versions.json").read_text())["versions"]
    entry = next(e for e in manifest if e["name"] == name)
    path = directory / entry["path"]
    if md5_file(path) != entry["md5"]:
        raise ValueError(f"{path} does not match its recorded md5 {entry['md5']}")
    return pd.read_csv(path)
