"""The data_quality lab's counterfactuals: broken gates, validation, serving check, hotfix and
data-version store, each run through the lab's own ``run()`` (``python -m labs.data_quality
--counterfactual NAME``; ``--audit`` runs them all)."""

from __future__ import annotations

import dataclasses
import json
from typing import Any

import pandas as pd

from labs.common.counterfactuals import Counterfactual, LabCounterfactuals
from labs.common.data import CATEGORICAL_FEATURES, NUMERIC_FEATURES, NUMERIC_RANGES, TARGET
from labs.common.schema import REASONS_COLUMN, BatchExpectations, BatchSplit, batch_schema
from labs.data_quality.lab import run
from labs.data_quality.params import DataQualityParams
from labs.data_quality.steps import KEY, convert, estimate_renames, gate, one_pass_checks
from labs.data_quality.versions import MANIFEST, VersionStore, md5_bytes

# --- the broken parts ----------------------------------------------------------------------


def types_only_gate(
    frame: pd.DataFrame, expectations: BatchExpectations | None = None, *, key: str | None = KEY
) -> BatchSplit:
    """A contract that checks types only: every column present, no value missing, numbers
    parse as numbers. No ranges, categories, unique key, cross-column rule or batch medians."""
    data = frame.reset_index(drop=True)
    reasons: dict[int, list[str]] = {}
    for name in (*NUMERIC_FEATURES, *CATEGORICAL_FEATURES, TARGET):
        missing = data[name].isna()
        for row in data.index[missing]:
            reasons.setdefault(int(row), []).append(f"{name}: missing")
        if name in NUMERIC_FEATURES:
            unparsable = pd.to_numeric(data[name], errors="coerce").isna() & ~missing
            for row in data.index[unparsable]:
                reasons.setdefault(int(row), []).append(f"{name}: wrong type")
    bad = sorted(reasons)
    quarantined = data.loc[bad].copy()
    quarantined[REASONS_COLUMN] = ["; ".join(reasons[i]) for i in bad]
    return BatchSplit(len(data), data.drop(index=bad), quarantined, batch_reasons=())


def naive_gate(
    frame: pd.DataFrame, expectations: BatchExpectations | None = None, *, key: str | None = KEY
) -> BatchSplit:
    """A naive gate: "cleaning" first (rows with a missing value are dropped, not
    quarantined, and the rest renumbered), then the types-only contract."""
    return types_only_gate(frame.dropna(), expectations, key=key)


def uncoerced_gate(
    frame: pd.DataFrame, expectations: BatchExpectations | None = None, *, key: str | None = KEY
) -> BatchSplit:
    """The contract with pandera's default ``coerce=False``: a numeric column must arrive as
    float64 exactly, so integer columns (tenure, calls, age) fail the whole batch."""
    import pandera.errors
    import pandera.pandas as pa

    split = gate(frame, expectations, key=key)
    exact = pa.DataFrameSchema({name: pa.Column(float) for name in NUMERIC_RANGES})
    try:
        exact.validate(frame, lazy=True)
    except pandera.errors.SchemaErrors as err:
        wrong = err.failure_cases[["column", "failure_case"]].drop_duplicates()
        found = tuple(f"{c}: dtype {f}, not float64" for c, f in wrong.itertuples(index=False))
        return dataclasses.replace(split, batch_reasons=(*split.batch_reasons, *found))
    return split


def eager_checks(frame: pd.DataFrame) -> list[str]:
    """Validation with pandera's default ``lazy=False``: it stops at the first failure."""
    return one_pass_checks(frame, lazy=False)


def contract_at_serving(data: pd.DataFrame) -> None:
    """A served model that validates its input against the data contract (ranges,
    categories) before predicting, not only against MLflow's signature."""
    batch_schema(labelled=False).validate(data, lazy=True)


def hotfix_assumes_thousandths(
    frame: pd.DataFrame, medians: Any
) -> tuple[pd.DataFrame, dict[str, Any]]:
    """A hotfix with the factor hard-coded from a misread changelog ("milli-euros": ÷1000)."""
    renames = estimate_renames(frame)
    return convert(frame, 1000.0, renames), {"unit_factor": 1000.0, "renames": renames}


# The writing process's memory: what MemoryStore "publishes" to. Never shared with another
# process, which is the point.
_MEMORY: dict[str, dict[str, bytes]] = {}


class MemoryStore(VersionStore):
    """Versions kept in the writing job's memory (a cache never published): the job itself
    reads them back fine; a teammate's process finds nothing."""

    def _space(self) -> dict[str, bytes]:
        return _MEMORY.setdefault(str(self.directory), {})

    def write(self, frame: pd.DataFrame, name: str) -> dict[str, Any]:
        data = frame.to_csv(index=False).encode()
        self._space()[f"{name}.csv"] = data
        return {"name": name, "path": f"{name}.csv", "md5": md5_bytes(data), "rows": len(frame)}

    def publish(self, entries: list[dict[str, Any]]) -> None:
        self._space()[MANIFEST] = json.dumps({"versions": entries}).encode()
        return None

    def manifest(self) -> list[dict[str, Any]]:
        data = self._space().get(MANIFEST)
        return json.loads(data)["versions"] if data else []

    def read(self, path: str) -> bytes | None:
        return self._space().get(path)


# --- the counterfactuals -------------------------------------------------------------------

NAIVE_GATE = Counterfactual(
    "naive-gate",
    "the gate drops rows with missing values, then checks types only",
    (
        "gate_loses_nothing",
        "gate_refuses_above_threshold",
        "contract_refuses_the_incident",
        "distribution_check_catches_small_factors",
    ),  # fmt: skip
    "A 'cleaning' step runs dropna() before the gate, so rows with a missing value vanish "
    "instead of being quarantined with their reason; the contract then only checks that "
    "values parse as their type: cents, unknown categories and impossible pairs pass, and the "
    "batch that should be refused is let in.",
    components={"gate": naive_gate},
)
PANDERA_DEFAULTS = Counterfactual(
    "pandera-defaults",
    "the contract validates eagerly and without coercion",
    ("clean_batch_passes", "lazy_reports_every_failure"),
    "The contract is run with pandera's defaults: lazy=False stops at the first failure, and "
    "coerce=False refuses integer columns declared as float, so a clean batch is refused.",
    components={"gate": uncoerced_gate, "validate_once": eager_checks},
)
SERVING_CONTRACT = Counterfactual(
    "serving-validates-ranges",
    "the served model checks the data contract, not only the signature",
    ("signature_accepts_unit_change",),
    "In this world the serving layer validates inputs against the contract's ranges and "
    "categories, so the cents batch is refused before the model: the claim that the MLflow "
    "signature alone lets it through must then fail.",
    components={"input_check": contract_at_serving},
)
WRONG_FACTOR = Counterfactual(
    "hotfix-wrong-factor",
    "the hotfix divides by a hard-coded 1000",
    ("hotfix_restores_predictions", "versioned_data_reproduces_metric"),
    "The conversion hard-codes ÷1000 instead of estimating the unit from the data: charges "
    "land a thousand times too low, predictions stay wrong, and the hotfixed version is not "
    "the pre-incident bytes.",
    components={"hotfix": hotfix_assumes_thousandths},
)
MEMORY_STORE = Counterfactual(
    "versions-kept-in-memory",
    "data versions live only in the writing process",
    ("versioned_data_reproduces_metric",),
    "The versions and their md5 are kept in the writing job's memory: reading them back in the "
    "same process works, but a teammate's process finds no version to check out.",
    components={"store": MemoryStore},
)

COUNTERFACTUALS = LabCounterfactuals(
    "data_quality",
    "data_quality",
    DataQualityParams,
    run,
    (NAIVE_GATE, PANDERA_DEFAULTS, SERVING_CONTRACT, WRONG_FACTOR, MEMORY_STORE),
    # Small batches, a short stream and one small factor (×3: one drift report fewer; ×2
    # flips only ~30 % of decisions, at the claim's bound, on small batches).
    audit_params={
        "train_rows": 1000,
        "batch_rows": 300,
        "unit_factors": (3.0, 100.0),
        "stream_days": 5,
        "rows_per_day": 150,
        "incident_day": 2,
        "hotfix_day": 3,
    },
)
