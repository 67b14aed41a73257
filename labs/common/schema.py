"""The churn batch schema (pandera) and the quarantine: a bad batch is kept, never dropped.

Every gate that accepts data — the retraining flow, the data-quality lab — validates against
the same schema, built from the generator's own column spec: required columns, types,
allowed categories, valid ranges, no missing values, and one cross-column rule (nobody has
been a customer for longer than they have lived). Optionally it also checks a unique key
column and batch-level expectations learned from a reference batch (each numeric column's
median must fall inside the reference's interquartile range: a unit change that a coarse
range check lets through moves it).

:func:`split_batch` turns the contract into a row-level gate: valid rows on one side, the
failing rows with their failed checks on the other, nothing lost and nothing duplicated.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import pandas as pd

from labs.common.data import (
    CATEGORICAL_FEATURES,
    CATEGORIES,
    NUMERIC_FEATURES,
    NUMERIC_RANGES,
    TARGET,
)

# The cross-column rule's name, as it appears in reasons.
LIFETIME_RULE = "tenure_within_lifetime"
# A quarantined row's failed checks, in one column of the quarantine table.
REASONS_COLUMN = "reasons"


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


@dataclass(frozen=True)
class BatchExpectations:
    """Batch-level expectations: per numeric column, the interval its median must fall in."""

    medians: Mapping[str, tuple[float, float]]

    @classmethod
    def from_reference(
        cls, reference: pd.DataFrame, columns: Sequence[str] = NUMERIC_FEATURES
    ) -> BatchExpectations:
        """Each column's batch median must lie within the reference's interquartile range:
        wide enough for ordinary batches and real drift of a fraction of an SD, far too
        narrow for a unit change (×2 moves the median by a full mean)."""
        medians = {}
        for name in columns:
            q25, q75 = reference[name].astype(float).quantile([0.25, 0.75])
            medians[name] = (float(q25), float(q75))
        return cls(medians)


def batch_schema(
    labelled: bool = True,
    *,
    key: str | None = None,
    expectations: BatchExpectations | None = None,
):  # -> pandera.DataFrameSchema (imported lazily)
    """The schema of a churn batch; ``labelled`` requires the ``churned`` label too.

    ``key`` names a column that must be present, non-null and unique (a repeated key after
    its first occurrence fails); ``expectations`` adds the batch-level median checks.
    """
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
    if key is not None:
        columns[key] = pa.Column(
            int, coerce=True, nullable=False, unique=True, report_duplicates="exclude_first"
        )
    for name, (low, high) in (expectations.medians if expectations else {}).items():
        columns[name] = columns[name].set_checks(
            [*columns[name].checks, _median_check(name, low, high)]
        )
    # Extra columns (e.g. the stream's ``day``) are allowed; missing ones are not.
    return pa.DataFrameSchema(columns, checks=[_lifetime_check()], strict=False, coerce=True)


def _lifetime_check():  # -> pandera.Check
    import pandera.pandas as pa

    def within_lifetime(frame: pd.DataFrame) -> pd.Series | bool:
        if "tenure_months" not in frame or "age" not in frame:
            return True  # the missing column is reported on its own
        tenure = pd.to_numeric(frame["tenure_months"], errors="coerce")
        age = pd.to_numeric(frame["age"], errors="coerce")
        # Written as "not longer than": a missing or unparsable value fails its own check.
        return ~(tenure > 12 * age)

    return pa.Check(
        within_lifetime,
        name=LIFETIME_RULE,
    )


def _median_check(name: str, low: float, high: float):  # -> pandera.Check
    import pandera.pandas as pa

    return pa.Check(
        lambda s: bool(low <= s.median() <= high),
        element_wise=False,
        name=f"median_in[{low:g}, {high:g}]",
    )


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


@dataclass(frozen=True)
class BatchSplit:
    """A batch split by the contract: ``valid`` and ``quarantined`` rows keep their positions
    in the input as index; ``quarantined`` has a ``reasons`` column. ``batch_reasons`` are
    failures of the batch as a whole (a missing column, a median outside its expectation)."""

    rows: int
    valid: pd.DataFrame
    quarantined: pd.DataFrame
    batch_reasons: tuple[str, ...]

    @property
    def bad_share(self) -> float:
        return len(self.quarantined) / self.rows if self.rows else 0.0

    def refusal(self, max_bad_share: float) -> tuple[str, ...]:
        """Why the gate refuses the batch whole (empty: accept the valid rows)."""
        reasons = list(self.batch_reasons)
        if self.bad_share > max_bad_share:
            reasons.append(
                f"{len(self.quarantined)} of {self.rows} rows fail the contract "
                f"({self.bad_share:.1%} > {max_bad_share:.1%})"
            )
        return tuple(reasons)

    def reason_counts(self) -> dict[str, int]:
        """Quarantined rows per failed check (a row failing two checks counts in both)."""
        counts: dict[str, int] = {}
        for text in self.quarantined.get(REASONS_COLUMN, pd.Series(dtype=str)):
            for reason in text.split("; "):
                counts[reason] = counts.get(reason, 0) + 1
        return dict(sorted(counts.items()))


def split_batch(
    frame: pd.DataFrame,
    labelled: bool = True,
    *,
    key: str | None = None,
    expectations: BatchExpectations | None = None,
    max_passes: int = 5,
) -> BatchSplit:
    """Split ``frame`` into rows that pass :func:`batch_schema` and rows that fail it.

    pandera's lazy mode reports every failure in one pass, but a value that cannot be coerced
    stops that column's other checks (they fail without naming rows). So the failing rows are
    set aside and the rest validated again until no row fails: the valid rows are exactly a
    frame that passes the whole contract. What fails without naming rows then is a failure
    of the batch (``batch_reasons``).
    """
    import pandera.errors

    data = frame.reset_index(drop=True)
    schema = batch_schema(labelled, key=key, expectations=expectations)
    row_reasons: dict[int, list[str]] = {}
    remaining = data
    batch_reasons: tuple[str, ...] = ("the batch is empty",) if len(data) == 0 else ()
    for _ in range(max_passes):
        if remaining.empty:
            break
        try:
            schema.validate(remaining, lazy=True)
        except pandera.errors.SchemaErrors as err:
            failures = err.failure_cases
        else:
            batch_reasons = ()
            break
        per_row = failures[failures["index"].notna()]
        batch_reasons = tuple(_reasons(failures[failures["index"].isna()]))
        if per_row.empty:
            break
        named = pd.DataFrame(
            {
                "row": per_row["index"].astype(int).to_numpy(),
                "reason": [
                    _row_reason(*case)
                    for case in zip(
                        per_row["schema_context"], per_row["column"], per_row["check"], strict=True
                    )
                ],
            }
        ).drop_duplicates()
        for row, reasons in named.groupby("row", sort=True)["reason"]:
            row_reasons.setdefault(int(row), []).extend(
                r for r in reasons if r not in row_reasons.get(int(row), [])
            )
        remaining = remaining.drop(index=per_row["index"].astype(int).unique())
    bad = sorted(row_reasons)
    quarantined = data.loc[bad].copy()
    quarantined[REASONS_COLUMN] = ["; ".join(row_reasons[i]) for i in bad]
    return BatchSplit(
        rows=len(data),
        valid=data.drop(index=bad),
        quarantined=quarantined,
        batch_reasons=batch_reasons,
    )


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


def _row_reason(context: str, column: object, check: object) -> str:
    if context == "DataFrameSchema" and str(check) == LIFETIME_RULE:
        return LIFETIME_RULE  # one rule over two columns: name it once
    check = str(check)
    if check.startswith("not_nullable"):
        check = "missing"
    elif check == "field_uniqueness":
        check = "duplicate key"
    elif check.startswith(("coerce_dtype", "dtype(")):
        check = "wrong type"
    return f"{column}: {check}"


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
        elif str(check).startswith("median_in"):
            where = str(check).removeprefix("median_in")
            reasons.append(f"{column}: the batch median lies outside the expected {where}")
        else:
            reasons.append(f"{column}: {len(cases)} values fail {check}{shown}")
    return reasons
