"""Feature, target and prediction drift tests, chosen on purpose; the report is Evidently's.

- Numeric columns: two-sample Cramér–von Mises (p-value, scipy). It weighs the whole gap
  between the two distribution functions, where Kolmogorov–Smirnov looks only at the largest
  one and is very conservative on integer columns with ties: at the same false-alarm budget
  it caught a 0.2 SD price shift in 94 % of 1,000-row batches (K-S 88 %) and +0.25 support
  calls in 93 % (K-S 69 %); ``benchmarks/bench_drift_power.py`` prints the whole table.
- Ordered categorical columns (a contract's length: month-to-month < one year < two years):
  the smaller of two p-values, Cramér–von Mises along the order and the chi-square, both
  calibrated on the same null draws. The order gives power where an ordered column usually
  moves — towards one end: +0.05 to month-to-month in 1,000-row batches was caught in 24 % of
  pairs (chi-square alone 21.5 %, an oracle that knew the category 31 %) — and the chi-square
  keeps a move into the middle category in view (22 %, where CvM alone caught 9 %). A value
  outside the declared order falls back to the chi-square.
- Other categorical columns: a *two-sample* chi-square test of homogeneity on the contingency table
  of counts. Evidently's default ``chisquare`` is a one-sample goodness-of-fit test that takes
  the reference proportions as exact; with equal-sized batches it ignores half the sampling
  noise and raises ~25 % false alarms with no drift at all. We register ours as a custom
  Evidently stat test so the report shows the test that decided.
- Many columns are tested at once, so each gets the Bonferroni threshold alpha / k, of a
  budget kept with a margin (:data:`FAMILY_MARGIN`): the asymptotic p-values (continuous
  columns, chi-square) are slightly optimistic in the far tail, and the chance that a batch
  without drift raises *any* alarm must stay below alpha, not merely near it. Integer columns
  (counts, ages) draw their null distribution instead.

The tests themselves, on arrays and counts, are in :mod:`labs.common.drift_tests`.

The verdict is computed with scipy (milliseconds); Evidently builds the HTML report only when
one is asked for, with the same two tests registered so the report shows what decided. Other
labs and the retraining flow call :func:`detect_drift`; nothing here runs at import.
"""

from __future__ import annotations

import functools
import json
import warnings
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from labs.common.data import CATEGORICAL_FEATURES, NUMERIC_FEATURES, ORDINAL_FEATURES
from labs.common.drift_tests import (
    chi2_two_sample_pvalue,
    cvm_two_sample_pvalue,
    ordered_pvalue,
)

CHI2_TWO_SAMPLE = "chi2_two_sample"
CVM = "cvm_two_sample"
ORDERED = "cvm_chi2_ordered"
# Each column's threshold is FAMILY_MARGIN × alpha / k. Measured on the generator (2,000 pairs
# of 1,000-row batches, 7 columns, benchmarks/bench_drift_power.py): at 0.85 of the Bonferroni
# share the any-column false-alarm rate was 4.7 % (95 % CI 3.9–5.7 %) for a 5 % budget; 0.8
# keeps the interval's top near 5.5 %, for about half a point of detection power.
FAMILY_MARGIN = 0.8


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
    ordinal: Mapping[str, Sequence[str]] = ORDINAL_FEATURES,
    monitored: Sequence[str] = (),
    alpha: float = 0.05,
    classification: tuple[str, str, str] | None = None,
    html_path: Path | None = None,
    report: bool = False,
    threshold_rule: Callable[[float, int], float] | None = None,
) -> DriftResult:
    """Test every column for drift; with ``html_path`` (or ``report=True``) also build the
    Evidently report (saved as HTML at ``html_path``) with the same tests.

    ``numeric`` and ``categorical`` are the feature columns (they make the drift share);
    a categorical column named in ``ordinal`` (its categories, lowest first) is tested on its
    order too (:func:`~labs.common.drift_tests.ordered_pvalue`);
    ``monitored`` adds columns watched beside them, e.g. the target or the prediction, tested
    by their dtype. ``classification=(target, prediction_label, prediction_proba)`` adds
    Evidently's quality metrics to the report (needs labels in ``current``).
    ``threshold_rule(alpha, columns)`` gives each column's p-value threshold (default
    :func:`column_threshold`, Bonferroni with a margin); the drift lab swaps it to show what
    a missing correction costs.
    """
    if not 0 < alpha < 1:
        raise ValueError(f"alpha must be in (0, 1), got {alpha!r}")
    features = (*numeric, *categorical)
    check_batches(reference, current, (*features, *monitored, *(classification or ())))
    monitored_numeric = [c for c in monitored if _is_numeric(reference[c])]
    monitored_categorical = [c for c in monitored if c not in monitored_numeric]
    all_numeric = [*numeric, *monitored_numeric]
    all_categorical = [*categorical, *monitored_categorical]
    rule = column_threshold if threshold_rule is None else threshold_rule
    threshold = rule(alpha, len(all_numeric) + len(all_categorical))
    columns = tuple(
        [
            ColumnDrift(c, CVM, cvm_two_sample_pvalue(reference[c], current[c]), threshold)
            for c in all_numeric
        ]
        + [
            _categorical_drift(reference[c], current[c], ordinal.get(c), threshold)
            for c in all_categorical
        ]
    )
    snapshot = None
    if report or html_path is not None:
        snapshot = _evidently_report(
            reference,
            current,
            all_numeric,
            {c.column: (c.method, ordinal.get(c.column)) for c in columns[len(all_numeric) :]},
            threshold,
            classification,
        )
        if html_path is not None:  # Evidently's bundle shared in evidently/ beside it
            from labs.common.report_html import save_report_html

            save_report_html(snapshot, html_path)
    return DriftResult(columns=columns, features=tuple(features), alpha=alpha, report=snapshot)


def _categorical_drift(
    reference: pd.Series, current: pd.Series, order: Sequence[str] | None, threshold: float
) -> ColumnDrift:
    if order is not None:
        p_value = ordered_pvalue(reference, current, order)
        if p_value is not None:
            return ColumnDrift(str(reference.name), ORDERED, p_value, threshold)
    p_value = chi2_two_sample_pvalue(reference, current)
    return ColumnDrift(str(reference.name), CHI2_TWO_SAMPLE, p_value, threshold)


def column_threshold(alpha: float, columns: int) -> float:
    """Each column's p-value threshold when ``columns`` are tested at a family budget ``alpha``."""
    return FAMILY_MARGIN * alpha / max(columns, 1)


def _evidently_report(
    reference: pd.DataFrame,
    current: pd.DataFrame,
    numeric: Sequence[str],
    tested: Mapping[str, tuple[str, Sequence[str] | None]],
    threshold: float,
    classification: tuple[str, str, str] | None,
) -> Any:
    """``tested``: per categorical column, the test that decided it and its order if ordered."""
    from evidently import BinaryClassification, DataDefinition, Dataset, Report
    from evidently.presets import ClassificationPreset, DataDriftPreset

    tests = _registered_tests()
    categorical = list(tested)
    methods: dict[str, Any] = {c: tests[CVM] for c in numeric}
    methods.update({c: tests[method] for c, (method, _) in tested.items()})
    # the ordinal test reads the order from the column's dtype: an ordered Categorical
    ordered = {
        c: pd.CategoricalDtype(list(order), ordered=True)
        for c, (method, order) in tested.items()
        if method == ORDERED and order is not None
    }
    definition = DataDefinition(
        numerical_columns=list(numeric),
        categorical_columns=list(categorical),
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
            columns=[*numeric, *categorical], per_column_method=methods, threshold=threshold
        )
    ]
    if classification:
        presets.append(ClassificationPreset())
    passed_on = list(dict.fromkeys([*numeric, *categorical, *(classification or ())]))
    with warnings.catch_warnings():
        # Evidently's widgets divide by zero on a constant column; the test itself is fine.
        warnings.simplefilter("ignore", RuntimeWarning)
        return Report(presets, include_tests=True).run(
            Dataset.from_pandas(current[passed_on].astype(ordered), data_definition=definition),
            Dataset.from_pandas(reference[passed_on].astype(ordered), data_definition=definition),
        )


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


def report_p_values(snapshot: Any) -> dict[str, float]:
    """The p-value per column as the Evidently report shows it (NaN → 1: nothing to test)."""
    return {c: _as_p_value(v) for c, v in _value_drift_scores(snapshot).items()}


@functools.cache
def _registered_tests() -> dict[str, Any]:
    """Register our three tests with Evidently (once, on first use) so its report uses them."""
    from evidently.legacy.calculations.stattests.registry import StatTest, register_stattest
    from evidently.legacy.core import ColumnType

    def cvm(
        reference_data: pd.Series, current_data: pd.Series, feature_type: Any, threshold: float
    ) -> tuple[float, bool]:
        p_value = cvm_two_sample_pvalue(reference_data, current_data)
        return p_value, p_value < threshold

    def chi2(
        reference_data: pd.Series, current_data: pd.Series, feature_type: Any, threshold: float
    ) -> tuple[float, bool]:
        p_value = chi2_two_sample_pvalue(reference_data, current_data)
        return p_value, p_value < threshold

    def ordinal(
        reference_data: pd.Series, current_data: pd.Series, feature_type: Any, threshold: float
    ) -> tuple[float, bool]:
        order = reference_data.dtype.categories  # set by _evidently_report
        p_value = ordered_pvalue(reference_data, current_data, order)
        if p_value is None:  # detect_drift chose this test: every value is in the order
            raise ValueError(f"{reference_data.name}: a value outside the order {list(order)}")
        return p_value, p_value < threshold

    cvm_test = StatTest(
        name=CVM,
        display_name="Cramér–von Mises two-sample p_value",
        allowed_feature_types=[ColumnType.Numerical],
    )
    chi2_test = StatTest(
        name=CHI2_TWO_SAMPLE,
        display_name="chi-square two-sample p_value",
        allowed_feature_types=[ColumnType.Categorical],
    )
    ordinal_test = StatTest(
        name=ORDERED,
        display_name="ordered: smaller of Cramér–von Mises and chi-square p_value",
        allowed_feature_types=[ColumnType.Categorical],
    )
    register_stattest(cvm_test, default_impl=cvm)
    register_stattest(chi2_test, default_impl=chi2)
    register_stattest(ordinal_test, default_impl=ordinal)
    return {CVM: cvm_test, CHI2_TWO_SAMPLE: chi2_test, ORDERED: ordinal_test}
