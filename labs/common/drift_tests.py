"""The two-sample tests behind :func:`labs.common.drift.detect_drift`, on plain arrays and
counts (scipy and numpy; no Evidently): why each was chosen is in that module's docstring.

- :func:`chi2_two_sample_pvalue`: categories, the chi-square test of homogeneity.
- :func:`cvm_two_sample_pvalue` / :func:`cvm_pvalues`: Cramér–von Mises, right with ties
  (Anderson's statistic; a drawn null for discrete columns).
- :func:`ordered_pvalue` / :func:`ordered_counts_pvalue`: ordered categories, the smaller of
  CvM along the order and the chi-square, calibrated together.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats


def chi2_two_sample_pvalue(reference: pd.Series, current: pd.Series) -> float:
    """p-value of the chi-square test that both samples come from one categorical distribution."""
    table = pd.concat(
        [reference.value_counts(dropna=True), current.value_counts(dropna=True)], axis=1
    ).fillna(0)
    table = table[table.sum(axis=1) > 0]  # categories seen in neither batch carry no evidence
    if len(table) < 2:  # one category in both: nothing can have moved
        return 1.0
    return float(stats.chi2_contingency(table.to_numpy().T, correction=False).pvalue)


# A numeric column with at most this many distinct values is tested as a discrete one.
DISCRETE_MAX_VALUES = 120
PERMUTATIONS = 4000  # null draws per discrete column: ~24 beyond the threshold at p = 0.006


def cvm_two_sample_pvalue(
    reference: pd.Series, current: pd.Series, permutations: int = PERMUTATIONS
) -> float:
    """p-value of the two-sample Cramér–von Mises test (see :func:`cvm_pvalues`)."""
    a = reference.dropna().to_numpy(float)
    b = current.dropna().to_numpy(float)
    if len(a) < 2 or len(b) < 2 or np.ptp(np.concatenate([a, b])) == 0:
        return 1.0  # too few values, or one constant on both sides: nothing can have moved
    return float(cvm_pvalues(a[None], b[None], permutations)[0])


def ordered_pvalue(
    reference: pd.Series,
    current: pd.Series,
    order: Sequence[str],
    permutations: int = PERMUTATIONS,
) -> float | None:
    """p-value for an ordered categorical column (``order``: its categories, lowest first);
    ``None`` when a value is not in ``order`` (the chi-square alone decides then).

    Two statistics of the counts per category: Cramér–von Mises along the order (power for
    mass moving towards one end) and the chi-square (any move, also into the middle). The
    p-value is that of the smaller of their two p-values, both read off the same null draws
    (the reference's counts, multivariate hypergeometric from the pooled counts), so the
    pair costs far less than a Bonferroni split of the column's budget would.
    """
    counts = []
    for s in (reference, current):
        codes = pd.Categorical(s.dropna().astype(str), categories=list(order)).codes
        if (codes < 0).any():
            return None
        counts.append(np.bincount(codes, minlength=len(order)))
    return ordered_counts_pvalue(counts[0], counts[1], permutations)


def ordered_counts_pvalue(
    ref_counts: np.ndarray, cur_counts: np.ndarray, permutations: int = PERMUTATIONS
) -> float:
    """:func:`ordered_pvalue` from the counts per category (in their order) of both batches."""
    pooled = ref_counts + cur_counts
    n, m = int(ref_counts.sum()), int(cur_counts.sum())
    keep = pooled > 0  # categories seen in neither batch carry no evidence
    if n < 2 or m < 2 or keep.sum() < 2:
        return 1.0
    ref_counts, pooled = ref_counts[keep], pooled[keep]
    rng = np.random.default_rng([int(v) for v in (*pooled, *ref_counts)][:64] + [n, m])
    draws = rng.multivariate_hypergeometric(pooled, n, size=permutations)
    null_p, observed_p = [], []
    for statistic in (_cvm_counts_statistic, _chi2_counts_statistic):
        null = statistic(draws, pooled, n, m)
        observed = statistic(ref_counts, pooled, n, m) * (1 - 1e-12)
        ranked = np.sort(null)
        null_p.append((permutations - np.searchsorted(ranked, null, "left")) / permutations)
        observed_p.append((1 + np.count_nonzero(null >= observed)) / (permutations + 1))
    smallest = np.minimum(*null_p)
    return float((1 + np.count_nonzero(smallest <= min(observed_p))) / (permutations + 1))


def _chi2_counts_statistic(ref_counts: np.ndarray, pooled: np.ndarray, n: int, m: int) -> Any:
    """Pearson's chi-square of the 2 × k table (reference counts, the rest of ``pooled``)."""
    expected_ref, expected_cur = pooled * n / (n + m), pooled * m / (n + m)
    cur_counts = pooled - ref_counts
    return ((ref_counts - expected_ref) ** 2 / expected_ref).sum(axis=-1) + (
        (cur_counts - expected_cur) ** 2 / expected_cur
    ).sum(axis=-1)


def cvm_pvalues(
    reference: np.ndarray, current: np.ndarray, permutations: int = PERMUTATIONS
) -> np.ndarray:
    """Two-sample Cramér–von Mises p-values, row by row (R × n against R × m).

    The statistic is Anderson's (1962): T = nm/N² · Σ over the pooled sample of
    (F_n − G_m)², both empirical distribution functions evaluated *after* each run of tied
    values. ``scipy.stats.cramervonmises_2samp`` computes it from mid-ranks instead: right
    without ties, wrong with ties and unequal sizes (a 2,000-row reference against 300-row
    batches of the same integer column was flagged in 100 % of pairs at p < 0.05).

    - Continuous columns: scipy's asymptotic p-value (Anderson's normalisation of T, then the
      limiting distribution).
    - Discrete columns (at most :data:`DISCRETE_MAX_VALUES` distinct values: counts, ages,
      months): ties make the asymptotic p-value optimistic (6–8 % at a nominal 5 % on a
      Poisson count), so the null distribution is drawn instead. T depends only on the
      counts per value, and under no drift the reference's counts are a multivariate
      hypergeometric draw from the pooled counts: ``permutations`` draws cost milliseconds.
      The generator is seeded from the counts, so the same data give the same p-value.
    """
    n, m = reference.shape[1], current.shape[1]
    both = np.concatenate([reference, current], axis=1)
    grid = np.unique(both)
    if len(grid) <= DISCRETE_MAX_VALUES:
        k = len(grid)
        idx = np.searchsorted(grid, both)
        rows = np.arange(both.shape[0])[:, None]
        ref_counts = np.zeros((both.shape[0], k), dtype=np.int64)
        np.add.at(ref_counts, (rows, idx[:, :n]), 1)
        pooled = np.zeros_like(ref_counts)
        np.add.at(pooled, (rows, idx), 1)
        pairs = zip(ref_counts, pooled, strict=True)
        return np.array([_cvm_permutation_p(r, c, n, m, permutations) for r, c in pairs])
    return _cvm_asymptotic_p(_cvm_statistic_sorted(both, n, m), n, m)


def _cvm_counts_statistic(ref_counts: np.ndarray, pooled: np.ndarray, n: int, m: int) -> Any:
    """T from counts per distinct value (rows of ``ref_counts`` × the pooled counts)."""
    f = np.cumsum(ref_counts, axis=-1) / n
    g = np.cumsum(pooled - ref_counts, axis=-1) / m
    return n * m / (n + m) ** 2 * ((f - g) ** 2 * pooled).sum(axis=-1)


def _cvm_permutation_p(
    ref_counts: np.ndarray, pooled: np.ndarray, n: int, m: int, permutations: int
) -> float:
    """Monte Carlo p-value with Besag–Clifford early stopping: draws come in chunks and stop
    once ``_STOP_AFTER`` null statistics beat the observed one (p is then clearly large,
    estimated as hits / draws); otherwise all ``permutations`` are drawn."""
    observed = _cvm_counts_statistic(ref_counts, pooled, n, m) * (1 - 1e-12)
    rng = np.random.default_rng([int(v) for v in (*pooled, *ref_counts)][:64] + [n, m])
    hits = drawn = 0
    while drawn < permutations:
        size = min(_CHUNK, permutations - drawn)
        draws = rng.multivariate_hypergeometric(pooled, n, size=size)
        hits += int(np.count_nonzero(_cvm_counts_statistic(draws, pooled, n, m) >= observed))
        drawn += size
        if hits >= _STOP_AFTER:
            return hits / drawn
    return (1 + hits) / (permutations + 1)


_CHUNK, _STOP_AFTER = 200, 20


def _cvm_statistic_sorted(both: np.ndarray, n: int, m: int) -> np.ndarray:
    """T for each row of the pooled R × (n + m) matrix (reference first), ties handled."""
    big_n = n + m
    order = np.argsort(both, axis=1, kind="stable")
    values = np.take_along_axis(both, order, axis=1)
    gap = np.cumsum(np.where(order < n, 1.0 / n, -1.0 / m), axis=1)  # F_n − G_m
    # Evaluate the gap after the last value of each run of ties (right-continuous ECDFs).
    index = np.broadcast_to(np.arange(big_n), values.shape)
    last_of_tie = np.ones(values.shape, dtype=bool)
    last_of_tie[:, :-1] = values[:, 1:] != values[:, :-1]
    run_end = np.where(last_of_tie, index, big_n - 1)
    run_end = np.minimum.accumulate(run_end[:, ::-1], axis=1)[:, ::-1]
    gap = np.take_along_axis(gap, run_end, axis=1)
    return n * m / big_n**2 * (gap**2).sum(axis=1)


def _cvm_asymptotic_p(t: np.ndarray, n: int, m: int) -> np.ndarray:
    """scipy's asymptotic p-value of T (Anderson 1962, eq. 11–15)."""
    from scipy.stats._hypotests import _cdf_cvm_inf  # the limiting distribution of T

    big_n, k = n + m, n * m
    et = (1 + 1 / big_n) / 6
    vt = (big_n + 1) * (4 * k * big_n - 3 * (n**2 + m**2) - 2 * k) / (45 * big_n**2 * 4 * k)
    tn = 1 / 6 + (t - et) / math.sqrt(45 * vt)
    p = np.ones_like(tn)
    tail = tn >= 0.003  # below, the limiting CDF is < 1e-18: p = 1
    p[tail] = np.clip(1.0 - _cdf_cvm_inf(tn[tail]), 0.0, 1.0)
    return p
