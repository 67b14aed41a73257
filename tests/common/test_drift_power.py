"""The project's drift detector at its power limit: honest p-values under no drift, and the
shifts of the power study (benchmarks/bench_drift_power.py) caught at n = 10,000."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from labs.common.data import (
    CATEGORIES,
    FEATURES,
    NUMERIC_FEATURES,
    ORDINAL_FEATURES,
    make_churn_data,
)
from labs.common.drift import (
    CHI2_TWO_SAMPLE,
    FAMILY_MARGIN,
    ORDERED,
    column_threshold,
    detect_drift,
)
from labs.common.drift_tests import (
    chi2_two_sample_pvalue,
    cvm_pvalues,
    cvm_two_sample_pvalue,
    ordered_pvalue,
)

PAIRS, N = 200, 300


@pytest.fixture(scope="module")
def null_p_values() -> dict[str, np.ndarray]:
    """Per column, the p-values of PAIRS no-drift pairs of N-row batches."""
    ref = make_churn_data(PAIRS * N, seed=101)
    cur = make_churn_data(PAIRS * N, seed=202)
    out: dict[str, list[float]] = {c: [] for c in FEATURES}
    for i in range(PAIRS):
        a, b = ref.iloc[i * N : (i + 1) * N], cur.iloc[i * N : (i + 1) * N]
        for c in FEATURES:
            if c in NUMERIC_FEATURES:
                out[c].append(cvm_two_sample_pvalue(a[c], b[c]))
            elif c in ORDINAL_FEATURES:
                out[c].append(ordered_pvalue(a[c], b[c], ORDINAL_FEATURES[c]))
            else:
                out[c].append(chi2_two_sample_pvalue(a[c], b[c]))
    return {c: np.array(v) for c, v in out.items()}


def test_p_values_are_uniform_on_a_continuous_column(null_p_values) -> None:
    # Cramér–von Mises on a continuous column: p ~ U(0, 1) when nothing drifted.
    assert stats.kstest(null_p_values["monthly_charges"], "uniform").pvalue > 0.001


@pytest.mark.parametrize("column", FEATURES)
def test_no_column_alarms_more_than_its_share(null_p_values, column: str) -> None:
    # At p < 0.05 (resolvable with a few hundred pairs) each column, integer columns with ties
    # included, flags at most its binomial upper bound — and is not dead either (K-S on tied
    # integers flagged almost nothing: it wasted its budget).
    flagged = int((null_p_values[column] < 0.05).sum())
    upper = stats.binom.ppf(0.999, PAIRS, 0.05)
    assert flagged <= upper, (column, flagged, upper)
    assert flagged >= stats.binom.ppf(0.001, PAIRS, 0.05), (column, flagged)


def test_family_threshold_keeps_a_margin_under_alpha() -> None:
    assert column_threshold(0.05, 7) == pytest.approx(FAMILY_MARGIN * 0.05 / 7)
    assert 0.8 <= FAMILY_MARGIN < 1
    # Bonferroni with the margin: any-column false-alarm chance below alpha for independent
    # exact tests, with room for the asymptotic p-values' optimism.
    assert 1 - (1 - column_threshold(0.05, 7)) ** 7 < 0.05 * FAMILY_MARGIN + 1e-3


def _contract_plus(mass: float, to: str = "month-to-month") -> dict[str, float]:
    p = dict(CATEGORIES["contract"])
    rest = sum(v for k, v in p.items() if k != to)
    return {k: v + mass if k == to else v - mass * v / rest for k, v in p.items()}


@pytest.mark.parametrize(
    ("shift", "column"),
    [
        ({"monthly_charges": 0.2 * 20.0}, "monthly_charges"),  # ~0.2 SD
        ({"contract": _contract_plus(0.05)}, "contract"),
        ({"contract": _contract_plus(0.05, "one-year")}, "contract"),  # into the middle
        ({"support_calls": 0.25}, "support_calls"),  # +1 call for a quarter of the rows
    ],
)
def test_the_power_study_shifts_are_caught_at_n_10000(shift, column: str) -> None:
    ref = make_churn_data(10_000, seed=5)
    cur = make_churn_data(10_000, seed=6, covariate_shift=shift)
    result = detect_drift(ref, cur)
    assert result.drifted_features == [column], (result.drifted_features, result[column])
    assert result[column].p_value < result[column].threshold / 10  # not by a hair


def test_no_shift_at_n_10000_flags_nothing() -> None:
    result = detect_drift(make_churn_data(10_000, seed=5), make_churn_data(10_000, seed=6))
    assert result.drifted == []
    assert math.isclose(result.alpha, 0.05)


def test_continuous_columns_get_scipys_cramer_von_mises() -> None:
    rng = np.random.default_rng(3)
    a, b = rng.normal(size=(4, 400)), rng.normal(0.1, size=(4, 300))
    expected = stats.cramervonmises_2samp(a, b, axis=1, method="asymptotic").pvalue
    assert cvm_pvalues(a, b) == pytest.approx(expected, rel=1e-9)


def test_ties_with_unequal_sizes_do_not_raise_false_alarms() -> None:
    # scipy's mid-rank statistic flags every one of these pairs (same distribution!) at 0.05;
    # the right statistic with a drawn null flags about 5 %.
    ref = make_churn_data(2000, seed=11)["support_calls"]
    batches = [make_churn_data(300, seed=500 + i)["support_calls"] for i in range(120)]
    scipy_p = [stats.cramervonmises_2samp(ref, b, method="asymptotic").pvalue for b in batches]
    ours = np.array([cvm_two_sample_pvalue(ref, b, permutations=400) for b in batches])
    assert np.mean(np.array(scipy_p) < 0.05) > 0.5  # the trap, still there in scipy
    assert (ours < 0.05).sum() <= stats.binom.ppf(0.999, len(batches), 0.05)


def test_discrete_p_values_are_reproducible_and_see_a_real_shift() -> None:
    ref = make_churn_data(1000, seed=1)["support_calls"]
    same = make_churn_data(1000, seed=2)["support_calls"]
    shifted = make_churn_data(1000, seed=2, covariate_shift={"support_calls": 0.5})["support_calls"]
    assert cvm_two_sample_pvalue(ref, same) == cvm_two_sample_pvalue(ref, same)
    assert cvm_two_sample_pvalue(ref, shifted) < 0.001 < cvm_two_sample_pvalue(ref, same)


def _flag_rate(test, shift: dict, pairs: int = 200, n: int = 1000) -> float:
    """Share of ``pairs`` n-row batch pairs whose contract ``test`` flags at the lab's threshold."""
    ref = make_churn_data(pairs * n, seed=31)["contract"]
    cur = make_churn_data(pairs * n, seed=32, covariate_shift={"contract": shift})["contract"]
    p = [test(ref[i * n : (i + 1) * n], cur[i * n : (i + 1) * n]) for i in range(pairs)]
    return float(np.mean(np.array(p) < column_threshold(0.05, len(FEATURES))))


def test_the_ordered_contract_test_gains_at_the_end_and_keeps_the_middle() -> None:
    # The contract's length is ordered. Mass moving towards an end is what the order sees: the
    # combined test flags more batches than the chi-square. Mass moving into the middle is
    # invisible along the order: CvM alone misses most of it, the combined test keeps close to
    # the chi-square. (Seeded data and seeded null draws: the same rates on every run.)
    order = ORDINAL_FEATURES["contract"]

    def ordered(a, b):
        return ordered_pvalue(a, b, order)

    def along_the_order_only(a, b):
        return cvm_two_sample_pvalue(*(pd.Series(pd.Categorical(s, order).codes) for s in (a, b)))

    end, middle = _contract_plus(0.07), _contract_plus(0.07, "one-year")
    assert _flag_rate(ordered, end) > _flag_rate(chi2_two_sample_pvalue, end)
    ours_middle = _flag_rate(ordered, middle)
    assert ours_middle > 2 * _flag_rate(along_the_order_only, middle)
    assert ours_middle > _flag_rate(chi2_two_sample_pvalue, middle) - 0.1


def test_an_ordered_column_with_an_unknown_value_falls_back_to_the_chi_square() -> None:
    ref, cur = make_churn_data(500, seed=1), make_churn_data(500, seed=2)
    assert detect_drift(ref, cur)["contract"].method == ORDERED
    cur["contract"] = cur["contract"].astype(str).replace("two-year", "three-year")
    result = detect_drift(ref, cur)
    assert result["contract"].method == CHI2_TWO_SAMPLE
    assert result.drifted_features == ["contract"]  # a category never seen before: drift
    assert ordered_pvalue(ref["contract"], cur["contract"], ORDINAL_FEATURES["contract"]) is None
