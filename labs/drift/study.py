"""How often does each drift test cry wolf, and how often does it catch a real shift?

Over many resampled pairs (reference batch, current batch) of size n we count how often each
test flags a column: with no drift that is the false-alarm rate, with a shift the detection
rate. The tests are vectorised over resamples (numpy/scipy on R × n matrices) and replicate
Evidently's definitions exactly (``tests/labs/test_drift.py`` checks them against Evidently):

- p-value tests, flag if p < alpha: Cramér–von Mises (numeric, ours), K-S (numeric, for
  comparison: less power on the same budget), chi-square two-sample (categorical, ours),
  chi-square goodness-of-fit against the reference proportions (Evidently's default);
- distance tests, flag if distance >= 0.1: Wasserstein normed by the reference std (numeric),
  Jensen–Shannon distance (categorical) — Evidently's defaults for batches over 1000 rows.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import stats

from labs.common.data import CATEGORICAL_FEATURES, CATEGORIES, NUMERIC_FEATURES, make_churn_data
from labs.common.drift_tests import cvm_pvalues

NUMERIC_METHODS = ("cvm", "ks", "wasserstein_normed")
CATEGORICAL_METHODS = ("chi2_two_sample", "chi2_goodness_of_fit", "jensen_shannon")
METHOD_LABELS = {
    "cvm": "Cramér–von Mises p<α (ours)",
    "ks": "K-S p<α",
    "wasserstein_normed": "Wasserstein ≥0.1",
    "chi2_two_sample": "χ² two-sample p<α (ours)",
    "chi2_goodness_of_fit": "χ² goodness-of-fit p<α (Evidently default)",
    "jensen_shannon": "Jensen-Shannon ≥0.1",
}


@dataclass(frozen=True)
class StudyRow:
    """One test at one batch size: false-alarm and detection rates over ``resamples`` pairs."""

    method: str
    kind: str  # "numeric" | "categorical"
    n: int
    resamples: int
    false_alarm_rate: float  # pooled over every column of this kind, no drift
    false_alarm_trials: int
    concept_false_alarm_rate: float  # same, current batches with concept drift only
    detection_rate: float  # the shifted column, the scenario's shift
    small_shift_detection_rate: float  # the shifted column, a small shift


def resamples_for(n: int, resamples: int, row_budget: int) -> int:
    """Fewer resamples for big batches, so the study stays within ``row_budget`` rows."""
    return max(20, min(resamples, row_budget // n))


def run_study(
    sizes: Sequence[int],
    resamples: int,
    alpha: float,
    shift: Mapping[str, float | Mapping[str, float]],
    small_shift: Mapping[str, float | Mapping[str, float]],
    concept_drift: float,
    seed: int,
    row_budget: int = 400_000,
    distance_threshold: float = 0.1,
    tests: Mapping[str, FlagTest] | None = None,
    draw_batch: Callable[..., pd.DataFrame] = make_churn_data,
) -> list[StudyRow]:
    """False-alarm and detection rate of every test at every batch size.

    ``tests`` (default :data:`STUDY_TESTS`) maps each method to the function that flags a
    column; ``draw_batch`` is the data generator — both replaceable, so the lab can show
    which claim a broken test or simulator breaks.
    """
    tests = {**STUDY_TESTS, **(tests or {})}
    numeric_shifted = next(c for c in shift if c in NUMERIC_FEATURES)
    categorical_shifted = next(c for c in shift if c in CATEGORICAL_FEATURES)
    rows: list[StudyRow] = []
    for n in sizes:
        r = resamples_for(n, resamples, row_budget)

        def draw(offset: int, n: int = n, r: int = r, **knobs: object) -> pd.DataFrame:
            return draw_batch(r * n, seed=seed * 1000 + offset, **knobs)

        reference = draw(1)
        batches = {
            "none": draw(2),
            "concept": draw(3, concept_drift=concept_drift),
            "shift": draw(4, covariate_shift=shift),
            "small": draw(5, covariate_shift=small_shift),
        }
        for kind, methods, columns, shape, shifted in (
            ("numeric", NUMERIC_METHODS, NUMERIC_FEATURES, _matrix, numeric_shifted),
            (
                "categorical",
                CATEGORICAL_METHODS,
                CATEGORICAL_FEATURES,
                _counts,
                categorical_shifted,
            ),
        ):
            for method in methods:
                flags = {
                    name: {
                        c: tests[method](
                            shape(reference[c], r), shape(b[c], r), alpha, distance_threshold
                        )
                        for c in columns
                    }
                    for name, b in batches.items()
                }
                rows.append(_row(method, kind, n, r, flags, shifted))
    return rows


def _row(method: str, kind: str, n: int, r: int, flags: dict, shifted: str) -> StudyRow:
    none = np.concatenate(list(flags["none"].values()))
    concept = np.concatenate(list(flags["concept"].values()))
    return StudyRow(
        method=method,
        kind=kind,
        n=n,
        resamples=r,
        false_alarm_rate=float(none.mean()),
        false_alarm_trials=int(none.size),
        concept_false_alarm_rate=float(concept.mean()),
        detection_rate=float(flags["shift"][shifted].mean()),
        small_shift_detection_rate=float(flags["small"][shifted].mean()),
    )


# --- vectorised tests: each takes R × n matrices and returns R p-values or distances -------


def ks_pvalues(reference: np.ndarray, current: np.ndarray) -> np.ndarray:
    """Two-sample K-S, row by row: the statistic exactly, the p-value asymptotic — what
    ``scipy.stats.ks_2samp(method="asymp")`` gives, vectorised (scipy's exact method loops in
    Python per row and would make this study ten times slower)."""
    n, m = reference.shape[1], current.shape[1]
    both = np.concatenate([reference, current], axis=1)
    order = np.argsort(both, axis=1)  # ties need no stable order: see last_of_tie
    values = np.take_along_axis(both, order, axis=1)
    gap = np.cumsum(np.where(order < n, 1.0 / n, -1.0 / m), axis=1)
    # Only compare the two CDFs after the last of a run of tied values.
    last_of_tie = np.ones(values.shape, dtype=bool)
    last_of_tie[:, :-1] = values[:, 1:] != values[:, :-1]
    statistic = np.where(last_of_tie, np.abs(gap), 0.0).max(axis=1)
    # D takes few distinct values (multiples of 1/n for equal sizes): evaluate each once.
    distinct, index = np.unique(statistic, return_inverse=True)
    return stats.kstwo.sf(distinct, np.round(n * m / (n + m)))[index]


def wasserstein_normed(reference: np.ndarray, current: np.ndarray) -> np.ndarray:
    """W1 distance / reference std, as Evidently. For equal sizes W1 is the mean gap of the
    sorted samples, which vectorises."""
    if reference.shape != current.shape:
        raise ValueError("wasserstein_normed needs equal batch sizes")
    w1 = np.abs(np.sort(reference, axis=1) - np.sort(current, axis=1)).mean(axis=1)
    return w1 / np.maximum(reference.std(axis=1), 0.001)


def category_counts(codes: np.ndarray, k: int) -> np.ndarray:
    """Counts of codes 0…k-1 in each row of an R × n matrix → R × k."""
    r = codes.shape[0]
    offset = codes + k * np.arange(r)[:, None]
    return np.bincount(offset.ravel(), minlength=r * k).reshape(r, k)


def chi2_two_sample_pvalues(ref_counts: np.ndarray, cur_counts: np.ndarray) -> np.ndarray:
    """Chi-square test of homogeneity on each 2 × k table (no continuity correction)."""
    table = np.stack([ref_counts, cur_counts], axis=1).astype(float)  # R × 2 × k
    present = table.sum(axis=1) > 0  # R × k: categories seen in either batch
    expected = table.sum(axis=2, keepdims=True) * table.sum(axis=1, keepdims=True)
    expected /= table.sum(axis=(1, 2), keepdims=True)
    with np.errstate(divide="ignore", invalid="ignore"):
        terms = np.where(expected > 0, (table - expected) ** 2 / expected, 0.0)
    dof = present.sum(axis=1) - 1
    p = stats.chi2.sf(terms.sum(axis=(1, 2)), np.maximum(dof, 1))
    return np.where(dof >= 1, p, 1.0)


def chi2_goodness_of_fit_pvalues(ref_counts: np.ndarray, cur_counts: np.ndarray) -> np.ndarray:
    """Evidently's default ``chisquare``: current counts against reference proportions taken
    as exact (scipy.stats.chisquare with f_exp = reference counts × n_cur / n_ref)."""
    ref = ref_counts.astype(float)
    cur = cur_counts.astype(float)
    present = (ref + cur) > 0
    expected = ref * cur.sum(axis=1, keepdims=True) / ref.sum(axis=1, keepdims=True)
    with np.errstate(divide="ignore", invalid="ignore"):
        terms = np.where(present, (cur - expected) ** 2 / expected, 0.0)
    dof = present.sum(axis=1) - 1
    p = stats.chi2.sf(terms.sum(axis=1), np.maximum(dof, 1))
    return np.where(dof >= 1, np.nan_to_num(p, nan=0.0), 1.0)


def jensen_shannon(ref_counts: np.ndarray, cur_counts: np.ndarray) -> np.ndarray:
    """Jensen–Shannon distance (natural log) between the category shares, as Evidently."""
    p = ref_counts / ref_counts.sum(axis=1, keepdims=True)
    q = cur_counts / cur_counts.sum(axis=1, keepdims=True)
    m = (p + q) / 2
    with np.errstate(divide="ignore", invalid="ignore"):
        kl_p = np.where(p > 0, p * np.log(p / m), 0.0).sum(axis=1)
        kl_q = np.where(q > 0, q * np.log(q / m), 0.0).sum(axis=1)
    return np.sqrt(np.maximum((kl_p + kl_q) / 2, 0.0))


def _matrix(series: pd.Series, r: int) -> np.ndarray:
    """A numeric column of ``r`` stacked batches as an R × n matrix."""
    return series.to_numpy(float).reshape(r, -1)


def _counts(series: pd.Series, r: int) -> np.ndarray:
    """A categorical column of ``r`` stacked batches as R × k counts per category."""
    labels = list(CATEGORIES[str(series.name)])
    return category_counts(_codes(series, labels).reshape(r, -1), len(labels))


# A flag test: (reference, current, alpha, distance threshold) → one bool per resample. Numeric
# tests get R × n matrices, categorical ones R × k counts.
FlagTest = Callable[[np.ndarray, np.ndarray, float, float], np.ndarray]


def cvm_flags(a: np.ndarray, b: np.ndarray, alpha: float, distance: float) -> np.ndarray:
    """Cramér–von Mises p < alpha (400 null draws resolve a per-column 0.05; the detector
    uses 4,000)."""
    return cvm_pvalues(a, b, permutations=400) < alpha


def ks_flags(a: np.ndarray, b: np.ndarray, alpha: float, distance: float) -> np.ndarray:
    """K-S p < alpha."""
    return ks_pvalues(a, b) < alpha


def wasserstein_flags(a: np.ndarray, b: np.ndarray, alpha: float, distance: float) -> np.ndarray:
    """Normed Wasserstein distance ≥ the threshold (Evidently's rule)."""
    return wasserstein_normed(a, b) >= distance


def chi2_two_sample_flags(
    a: np.ndarray, b: np.ndarray, alpha: float, distance: float
) -> np.ndarray:
    """Two-sample chi-square p < alpha."""
    return chi2_two_sample_pvalues(a, b) < alpha


def chi2_goodness_of_fit_flags(
    a: np.ndarray, b: np.ndarray, alpha: float, distance: float
) -> np.ndarray:
    """Evidently's default chi-square p < alpha."""
    return chi2_goodness_of_fit_pvalues(a, b) < alpha


def jensen_shannon_flags(a: np.ndarray, b: np.ndarray, alpha: float, distance: float) -> np.ndarray:
    """Jensen–Shannon distance ≥ the threshold."""
    return jensen_shannon(a, b) >= distance


STUDY_TESTS: dict[str, FlagTest] = {
    "cvm": cvm_flags,
    "ks": ks_flags,
    "wasserstein_normed": wasserstein_flags,
    "chi2_two_sample": chi2_two_sample_flags,
    "chi2_goodness_of_fit": chi2_goodness_of_fit_flags,
    "jensen_shannon": jensen_shannon_flags,
}


def _codes(series: pd.Series, labels: list[str]) -> np.ndarray:
    if isinstance(series.dtype, pd.CategoricalDtype) and list(series.cat.categories) == labels:
        return series.cat.codes.to_numpy()
    return pd.Categorical(series, categories=labels).codes
