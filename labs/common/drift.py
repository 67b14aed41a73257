"""Feature, target and prediction drift tests, chosen on purpose, run through Evidently.

- Numeric columns: two-sample Kolmogorov–Smirnov (p-value).
- Categorical columns: a *two-sample* chi-square test of homogeneity on the contingency table
  of counts. Evidently's default ``chisquare`` is a one-sample goodness-of-fit test that takes
  the reference proportions as exact; with equal-sized batches it ignores half the sampling
  noise and raises ~25 % false alarms with no drift at all. We register ours as a custom
  Evidently stat test so the report shows the test that decided.
- Many columns are tested at once, so each gets the Bonferroni threshold alpha / k: the chance
  that a batch without drift raises *any* alarm stays at most alpha.

Other labs and the retraining flow call :func:`detect_drift`; nothing here runs at import.
"""

from __future__ import annotations

import functools
import json
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats

from labs.common.data import CATEGORICAL_FEATURES, NUMERIC_FEATURES

CHI2_TWO_SAMPLE = "chi2_two_sample"
KS = "ks"


@dataclass(frozen=True)
class ColumnDrift:
    """One column's test: its p-value against the (corrected) threshold."""

    column: str
    method: str
    p_value: float
    threshold: float

    @property
    def drifted(self) -> bool:
        return self.p_value < self.threshold


@dataclass(frozen=True)
class DriftResult:
    """The verdict per column; ``features`` are the columns counted in the drift share."""

    columns: tuple[ColumnDrift, ...]
    features: tuple[str, ...]
    alpha: float
    report: Any = field(default=None, compare=False, repr=False)  # the Evidently snapshot

    @property
    def drifted(self) -> list[str]:
        """Every drifted column (features, and target or prediction if they were tested)."""
        return [c.column for c in self.columns if c.drifted]

    @property
    def drifted_features(self) -> list[str]:
        return [c.column for c in self.columns if c.drifted and c.column in self.features]

    @property
    def drift_share(self) -> float:
        """Share of feature columns that drifted."""
        return len(self.drifted_features) / len(self.features) if self.features else 0.0

    def __getitem__(self, column: str) -> ColumnDrift:
        for c in self.columns:
            if c.column == column:
                return c
        raise KeyError(
            f"column {column!r} was not tested; tested: {[c.column for c in self.columns]}"
        )


def chi2_two_sample_pvalue(reference: pd.Series, current: pd.Series) -> float:
    """p-value of the chi-square test that both samples come from one categorical distribution."""
    table = pd.concat(
        [reference.value_counts(dropna=True), current.value_counts(dropna=True)], axis=1
    ).fillna(0)
    table = table[table.sum(axis=1) > 0]  # categories seen in neither batch carry no evidence
    if len(table) < 2:  # one category in both: nothing can have moved
        return 1.0
    return float(stats.chi2_contingency(table.to_numpy().T, correction=False).pvalue)


def check_batches(reference: pd.DataFrame, current: pd.DataFrame, columns: Sequence[str]) -> None:
    """Refuse batches that cannot be compared, with an error that names the columns."""
    for name, frame in (("reference", reference), ("current", current)):
        if len(frame) == 0:
            raise ValueError(f"the {name} batch is empty: there is nothing to compare")
    if set(reference.columns) != set(current.columns):
        missing = sorted(set(reference.columns) - set(current.columns))
        extra = sorted(set(current.columns) - set(reference.columns))
        raise ValueError(
            "reference and current batches have different columns: "
            f"missing in current {missing}, not in reference {extra}"
        )
    absent = [c for c in columns if c not in reference.columns]
    if absent:
        raise ValueError(
            f"columns to test {absent} are not in the batches ({list(reference.columns)})"
        )


def detect_drift(
    reference: pd.DataFrame,
    current: pd.DataFrame,
    *,
    numeric: Sequence[str] = NUMERIC_FEATURES,
    categorical: Sequence[str] = CATEGORICAL_FEATURES,
    monitored: Sequence[str] = (),
    alpha: float = 0.05,
    classification: tuple[str, str, str] | None = None,
    html_path: Path | None = None,
) -> DriftResult:
    """Test every column for drift with Evidently; optionally save the HTML report.

    ``numeric`` and ``categorical`` are the feature columns (they make the drift share);
    ``monitored`` adds columns watched beside them, e.g. the target or the prediction, tested
    by their dtype. ``classification=(target, prediction_label, prediction_proba)`` adds
    Evidently's quality metrics to the report (needs labels in ``current``).
    """
    if not 0 < alpha < 1:
        raise ValueError(f"alpha must be in (0, 1), got {alpha!r}")
    features = (*numeric, *categorical)
    check_batches(reference, current, (*features, *monitored, *(classification or ())))
    monitored_numeric = [c for c in monitored if _is_numeric(reference[c])]
    monitored_categorical = [c for c in monitored if c not in monitored_numeric]
    all_numeric = [*numeric, *monitored_numeric]
    all_categorical = [*categorical, *monitored_categorical]
    threshold = alpha / (len(all_numeric) + len(all_categorical))

    from evidently import BinaryClassification, DataDefinition, Dataset, Report
    from evidently.presets import ClassificationPreset, DataDriftPreset

    chi2_test = _registered_chi2_two_sample()
    methods: dict[str, Any] = {c: KS for c in all_numeric}
    methods.update({c: chi2_test for c in all_categorical})
    definition = DataDefinition(
        numerical_columns=all_numeric,
        categorical_columns=all_categorical,
        classification=(
            [
                BinaryClassification(
                    target=classification[0],
                    prediction_labels=classification[1],
                    prediction_probas=classification[2],
                )
            ]
            if classification
            else None
        ),
    )
    presets: list[Any] = [
        DataDriftPreset(
            columns=[*all_numeric, *all_categorical],
            per_column_method=methods,
            threshold=threshold,
        )
    ]
    if classification:
        presets.append(ClassificationPreset())
    columns = [*all_numeric, *all_categorical]
    passed_on = list(dict.fromkeys([*columns, *(classification or ())]))
    with warnings.catch_warnings():
        # Evidently's widgets divide by zero on a constant column; the test itself is fine.
        warnings.simplefilter("ignore", RuntimeWarning)
        snapshot = Report(presets, include_tests=True).run(
            Dataset.from_pandas(current[passed_on], data_definition=definition),
            Dataset.from_pandas(reference[passed_on], data_definition=definition),
        )
    scores = _value_drift_scores(snapshot)
    result = DriftResult(
        columns=tuple(
            ColumnDrift(
                column=c,
                method=KS if c in all_numeric else CHI2_TWO_SAMPLE,
                p_value=_as_p_value(scores.get(c)),
                threshold=threshold,
            )
            for c in columns
        ),
        features=tuple(features),
        alpha=alpha,
        report=snapshot,
    )
    if html_path is not None:
        html_path.parent.mkdir(parents=True, exist_ok=True)
        snapshot.save_html(str(html_path))
    return result


def _is_numeric(series: pd.Series) -> bool:
    # A 0/1 label is a category, not a number: test it with the chi-square, not K-S.
    return pd.api.types.is_float_dtype(series) or (
        pd.api.types.is_numeric_dtype(series) and series.nunique() > 2
    )


def _as_p_value(value: Any) -> float:
    # Evidently reports NaN when a test cannot be computed (e.g. a constant column on both
    # sides): nothing can have drifted, so that is p = 1.
    if value is None or not np.isfinite(value):
        return 1.0
    return float(value)


def _value_drift_scores(snapshot: Any) -> dict[str, float]:
    scores: dict[str, float] = {}
    for metric in json.loads(snapshot.json())["metrics"]:
        config = metric.get("config", {})
        if config.get("type") == "evidently:metric_v2:ValueDrift":
            scores[config["column"]] = metric["value"]
    return scores


@functools.cache
def _registered_chi2_two_sample() -> Any:
    """Register the two-sample chi-square with Evidently (once, on first use)."""
    from evidently.legacy.calculations.stattests.registry import StatTest, register_stattest
    from evidently.legacy.core import ColumnType

    def impl(
        reference_data: pd.Series, current_data: pd.Series, feature_type: Any, threshold: float
    ) -> tuple[float, bool]:
        p_value = chi2_two_sample_pvalue(reference_data, current_data)
        return p_value, p_value < threshold

    test = StatTest(
        name=CHI2_TWO_SAMPLE,
        display_name="chi-square two-sample p_value",
        allowed_feature_types=[ColumnType.Categorical],
    )
    register_stattest(test, default_impl=impl)
    return test
