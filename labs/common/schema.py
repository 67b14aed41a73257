"""The churn batch schema (pandera) and the quarantine: a bad batch is kept, never dropped.

Every gate that accepts data — the retraining flow, the data-quality lab — validates against
the same schema, built from the generator's own column spec: required columns, types,
allowed categories, valid ranges, no missing values.
"""

from __future__ import annotations

import json
import shutil
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import pandas as pd

from labs.common.data import CATEGORICAL_FEATURES, CATEGORIES, NUMERIC_RANGES, TARGET


class InvalidBatchError(ValueError):
    """A batch failed validation; ``reasons`` lists every failed check, ``quarantined`` where
    the batch was kept."""

    def __init__(self, reasons: list[str], quarantined: Path | None = None) -> None:
        self.reasons = reasons
        self.quarantined = quarantined
        where = f"; batch kept in {quarantined}" if quarantined else ""
        super().__init__(f"invalid batch ({len(reasons)} problems): " + "; ".join(reasons) + where)


@dataclass(frozen=True)
class ValidationReport:
    """What a validation found: no reasons means the batch is valid."""

    rows: int
    reasons: tuple[str, ...]

    @property
    def valid(self) -> bool:
        return not self.reasons


def batch_schema(labelled: bool = True):  # -> pandera.DataFrameSchema (imported lazily)
    """The schema of a churn batch; ``labelled`` requires the ``churned`` label too."""
    import pandera.pandas as pa

    columns = {
        name: pa.Column(
            float,
            checks=pa.Check.in_range(low, high),
            coerce=True,
            nullable=False,
            title=name,
        )
        for name, (low, high) in NUMERIC_RANGES.items()
    }
    for name in CATEGORICAL_FEATURES:
        columns[name] = pa.Column(
            str, checks=pa.Check.isin(list(CATEGORIES[name])), coerce=True, nullable=False
        )
    if labelled:
        columns[TARGET] = pa.Column(int, checks=pa.Check.isin([0, 1]), coerce=True, nullable=False)
    # Extra columns (e.g. the stream's ``day``) are allowed; missing ones are not.
    return pa.DataFrameSchema(columns, strict=False, coerce=True)


def validate_batch(frame: pd.DataFrame, labelled: bool = True) -> ValidationReport:
    """Check ``frame`` against :func:`batch_schema`; collect every problem, in plain words."""
    import pandera.errors

    if len(frame) == 0:
        return ValidationReport(rows=0, reasons=("the batch is empty",))
    try:
        batch_schema(labelled).validate(frame, lazy=True)
    except pandera.errors.SchemaErrors as err:
        return ValidationReport(rows=len(frame), reasons=tuple(_reasons(err.failure_cases)))
    return ValidationReport(rows=len(frame), reasons=())


def quarantine(
    frame: pd.DataFrame,
    reasons: list[str] | tuple[str, ...],
    quarantine_dir: Path,
    name: str,
    source: Path | None = None,
) -> Path:
    """Keep a rejected batch in ``quarantine_dir`` with a ``.reason.json`` beside it.

    A batch that came from a file is moved there (it leaves the inbox, nothing is lost);
    a generated one is written there. Returns the quarantined file.
    """
    quarantine_dir.mkdir(parents=True, exist_ok=True)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S%fZ")
    target = quarantine_dir / f"{name}-{stamp}.csv"
    if source is not None and source.exists():
        shutil.move(str(source), target)
    else:
        frame.to_csv(target, index=False)
    target.with_suffix(".reason.json").write_text(
        json.dumps(
            {
                "batch": name,
                "source": str(source) if source else None,
                "rows": len(frame),
                "reasons": list(reasons),
                "quarantined_at": stamp,
            },
            indent=2,
        )
        + "\n"
    )
    return target


def _reasons(failures: pd.DataFrame) -> list[str]:
    """Turn pandera's failure table into one readable line per (column, check)."""
    reasons = []
    for (column, check), cases in failures.groupby(["column", "check"], dropna=False, sort=False):
        column = "batch" if pd.isna(column) else column
        values = cases["failure_case"].dropna().astype(str).unique()[:3]
        shown = f" (e.g. {', '.join(values)})" if len(values) else ""
        if str(check) == "column_in_dataframe":
            reasons.append(f"missing column {cases['failure_case'].iloc[0]!r}")
        elif str(check).startswith("not_nullable"):
            reasons.append(f"{column}: {len(cases)} missing values")
        else:
            reasons.append(f"{column}: {len(cases)} values fail {check}{shown}")
    return reasons
