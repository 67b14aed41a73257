"""The drift lab's claims, each decided by the numbers the run measured, against bounds fixed
before the measurement.

Rates measured over resamples are judged with exact binomial statistics, one rule for all:

- "at most α" means *not detectably above α*: an exact one-sided binomial test of
  "rate ≤ α" does not reject at the 5 % level (split among the rates one claim judges: six
  rates each at 5 % would fail a true claim one time in four) — on a number of trials fixed
  in advance so that the same test would reject a rate of 2α with at least
  :data:`POWER_TARGET` power (:func:`power_at`);
- "several times α" means *detectably above 2α*: the one-sided 95 % Clopper–Pearson lower
  bound of the rate exceeds 2α — the very rate the first rule is powered to reject.

Trials must be independent. The detector's family-wise alarm is one trial per batch pair.
The study pools a test's flags over the columns of each resample: the generator draws every
feature from its own random stream (``labs.common.data``), so with no shift the columns'
flags are independent and each (resample, column) is one trial.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from scipy import stats

from labs.common.data import FEATURES, PROBA, TARGET
from labs.common.drift import DriftResult
from labs.common.results import Claim
from labs.drift.study import StudyRow

LEVEL = 0.05  # one-sided level of every binomial test and bound here
POWER_TARGET = 0.8  # power a false-alarm test must have against a rate of 2α


@dataclass(frozen=True)
class FamilyAlarms:
    """The detector on ``batches`` independent no-drift pairs: how many raised any alarm."""

    batches: int
    alarms: int
    columns: int
    column_threshold: float
    alpha: float

    def plus(self, other: FamilyAlarms) -> FamilyAlarms:
        """Both sets of trials together (the same detector on other, independent pairs)."""
        return FamilyAlarms(
            self.batches + other.batches,
            self.alarms + other.alarms,
            self.columns,
            self.column_threshold,
            self.alpha,
        )


def critical_count(trials: int, rate: float) -> int:
    """The smallest count that rejects "rate ≤ ``rate``" at :data:`LEVEL` (exact, one-sided)."""
    return int(stats.binom.isf(LEVEL, trials, rate)) + 1


def p_above(count: float, trials: int, rate: float) -> float:
    """One-sided p-value of ``count`` successes against "rate ≤ ``rate``"; a fractional count
    (a pooled rate × trials) is read through the beta function, as Clopper–Pearson does."""
    if count <= 0:
        return 1.0
    return float(stats.beta.cdf(rate, count, trials - count + 1))


def upper_bound(count: float, trials: int) -> float:
    """One-sided (1 − LEVEL) Clopper–Pearson upper bound of a rate."""
    return 1.0 if count >= trials else float(stats.beta.ppf(1 - LEVEL, count + 1, trials - count))


def lower_bound(count: float, trials: int) -> float:
    """One-sided (1 − LEVEL) Clopper–Pearson lower bound of a rate."""
    return 0.0 if count <= 0 else float(stats.beta.ppf(LEVEL, count, trials - count + 1))


def power_at(trials: int, rate: float, alternative: float) -> float:
    """Chance that the test of "rate ≤ ``rate``" rejects when the true rate is ``alternative``."""
    return float(stats.binom.sf(critical_count(trials, rate) - 1, trials, alternative))


def not_above(rate: float, trials: int, alpha: float, tests: int = 1) -> bool:
    """Not detectably above ``alpha`` (the first rule of the module docstring); a claim that
    makes ``tests`` such statements at once splits the level among them (Bonferroni)."""
    return p_above(rate * trials, trials, alpha) > LEVEL / tests


def well_above(rate: float, trials: int, alpha: float) -> bool:
    """Detectably above 2 × ``alpha`` (the second rule)."""
    return lower_bound(rate * trials, trials) > 2 * alpha


def make_claims(
    params: Any,
    reference_quality: dict[str, float],
    quality: dict[str, dict[str, float]],
    drift: dict[str, DriftResult],
    study: list[StudyRow],
    family: FamilyAlarms,
) -> list[Claim]:
    """Turn the measurements into the interview answer's claims, each decided by numbers."""
    alpha = params.alpha
    ref_auc, ref_acc = reference_quality["roc_auc"], reference_quality["accuracy"]
    shifted = sorted(c for c in params.covariate_shift if c in FEATURES)
    rows = {(r.method, r.n): r for r in study}
    small_n, large_n = min(params.sample_sizes), max(params.sample_sizes)

    def auc_drop(name: str) -> float:
        return ref_auc - quality[name]["roc_auc"]

    chosen = [r for r in study if r.method in ("cvm", "chi2_two_sample")]
    naive = [r for r in study if r.method == "chi2_goodness_of_fit"]
    concept, prior, covariate = drift["concept"], drift["prior"], drift["covariate"]
    power = power_at(family.batches, alpha, 2 * alpha)
    family_p = p_above(family.alarms, family.batches, alpha)
    wasserstein_small = rows["wasserstein_normed", small_n]
    wasserstein_large = rows["wasserstein_normed", large_n]
    return [
        Claim(
            "no_drift_nothing_flagged",
            "With no drift, no feature, target or prediction test fires and quality holds.",
            passed=not drift["no_drift"].drifted
            and abs(auc_drop("no_drift")) < params.quality_drop_alert,
            measured={
                "flagged_columns": drift["no_drift"].drifted,
                "smallest_p_value": min(c.p_value for c in drift["no_drift"].columns),
                "threshold": drift["no_drift"].columns[0].threshold,
                "roc_auc_drop": auc_drop("no_drift"),
            },
        ),
        Claim(
            "covariate_detected",
            "Covariate drift (P(x) changes) is flagged on the shifted features.",
            passed=all(covariate[c].drifted for c in shifted),
            measured={f"p_value_{c}": covariate[c].p_value for c in shifted}
            | {"threshold": covariate.columns[0].threshold},
        ),
        Claim(
            "covariate_columns_exact",
            "… on exactly those features; the model's quality under it is measured, "
            "whatever it is.",
            passed=sorted(covariate.drifted_features) == shifted,
            measured={
                "shifted": shifted,
                "flagged_features": covariate.drifted_features,
                "target_drift_flagged": covariate[TARGET].drifted,
                "roc_auc_reference": ref_auc,
                "roc_auc_current": quality["covariate"]["roc_auc"],
                "accuracy_reference": ref_acc,
                "accuracy_current": quality["covariate"]["accuracy"],
            },
        ),
        Claim(
            "concept_invisible_to_feature_tests",
            "Concept drift (P(churn | x) changes) trips no feature test: over resamples the "
            "chosen tests flag its batches no more than α (not detectably above α, exact "
            "binomial test) at every batch size.",
            passed=not concept.drifted_features
            and all(
                not_above(r.concept_false_alarm_rate, r.false_alarm_trials, alpha, len(chosen))
                for r in chosen
            ),
            measured={
                "flagged_features": concept.drifted_features,
                "flag_rate_max": max(r.concept_false_alarm_rate for r in chosen),
                "level_per_rate": LEVEL / len(chosen),
                "smallest_p_above_alpha": min(
                    p_above(
                        r.concept_false_alarm_rate * r.false_alarm_trials,
                        r.false_alarm_trials,
                        alpha,
                    )
                    for r in chosen
                ),
                "no_drift_false_alarm_max": max(r.false_alarm_rate for r in chosen),
            },
        ),
        Claim(
            "concept_caught_by_performance",
            "Performance monitoring on labelled data catches it: ROC-AUC and accuracy drop by "
            f"more than the {params.quality_drop_alert:g} alert threshold.",
            passed=auc_drop("concept") > params.quality_drop_alert
            and ref_acc - quality["concept"]["accuracy"] > params.quality_drop_alert,
            measured={
                "roc_auc_reference": ref_auc,
                "roc_auc_current": quality["concept"]["roc_auc"],
                "accuracy_reference": ref_acc,
                "accuracy_current": quality["concept"]["accuracy"],
                "churn_rate_current": quality["concept"]["churn_rate"],
            },
        ),
        Claim(
            "prior_shift_detected",
            "Prior shift (the base churn rate moves) is flagged as target drift and prediction "
            "drift; the model under-predicts churn.",
            passed=prior[TARGET].drifted
            and prior[PROBA].drifted
            and quality["prior"]["predicted_churn_rate"] < quality["prior"]["churn_rate"],
            measured={
                "churn_rate_reference": reference_quality["churn_rate"],
                "churn_rate_current": quality["prior"]["churn_rate"],
                "predicted_churn_rate_current": quality["prior"]["predicted_churn_rate"],
                "p_value_target": prior[TARGET].p_value,
                "p_value_prediction": prior[PROBA].p_value,
                "flagged_features": prior.drifted_features,
                "recall_reference": reference_quality["recall"],
                "recall_current": quality["prior"]["recall"],
                "precision_reference": reference_quality["precision"],
                "precision_current": quality["prior"]["precision"],
            },
        ),
        Claim(
            "false_alarm_rate_at_most_alpha",
            f"With no drift the detector raises an alarm (any of its {family.columns} columns) "
            f"on at most α={alpha:g} of batches: over {family.batches} independent no-drift "
            f"batch pairs — a number fixed in advance so that a rate of 2α would be caught with "
            f"≥ {POWER_TARGET:.0%} power — an exact one-sided binomial test does not find the "
            "alarm rate above α.",
            passed=power >= POWER_TARGET and family_p > LEVEL,
            measured={
                "batches": family.batches,
                "alarms": family.alarms,
                "alarm_rate": family.alarms / family.batches,
                "upper_bound_95": upper_bound(family.alarms, family.batches),
                "p_value_rate_above_alpha": family_p,
                "alarms_that_would_reject": critical_count(family.batches, alpha),
                "power_at_2alpha": power,
                "column_threshold": family.column_threshold,
            },
        ),
        Claim(
            "naive_chi_square_false_alarms",
            "Evidently's default categorical χ² (goodness-of-fit against the reference "
            "proportions) false-alarms several times more often than α: at every batch size its "
            "rate is detectably above 2α (95 % lower bound).",
            passed=all(well_above(r.false_alarm_rate, r.false_alarm_trials, alpha) for r in naive),
            measured={f"n{r.n}": r.false_alarm_rate for r in naive}
            | {
                "lower_bound_min": min(
                    lower_bound(r.false_alarm_rate * r.false_alarm_trials, r.false_alarm_trials)
                    for r in naive
                ),
                "two_alpha": 2 * alpha,
            },
        ),
        Claim(
            "sample_size_tradeoff",
            f"Batch size changes what a test means: at n={small_n} Wasserstein ≥ 0.1 false-alarms "
            f"several times more often than α, at n={large_n} not detectably more than α; "
            f"Cramér–von Mises flags a tiny 0.1-SD shift at n={large_n} nearly always (≥ 90 %), "
            f"at n={small_n} rarely (≤ 25 %).",
            passed=well_above(
                wasserstein_small.false_alarm_rate, wasserstein_small.false_alarm_trials, alpha
            )
            and not_above(
                wasserstein_large.false_alarm_rate, wasserstein_large.false_alarm_trials, alpha
            )
            and rows["cvm", large_n].small_shift_detection_rate >= 0.9
            and rows["cvm", small_n].small_shift_detection_rate <= 0.25,
            measured={
                f"wasserstein_false_alarms_n{small_n}": wasserstein_small.false_alarm_rate,
                f"wasserstein_false_alarms_n{large_n}": wasserstein_large.false_alarm_rate,
                f"cvm_small_shift_detection_n{small_n}": rows[
                    "cvm", small_n
                ].small_shift_detection_rate,
                f"cvm_small_shift_detection_n{large_n}": rows[
                    "cvm", large_n
                ].small_shift_detection_rate,
            },
        ),
        Claim(
            "power_on_the_same_budget",
            "On the same false-alarm budget, Cramér–von Mises is at no batch size detectably "
            "less powerful than K-S on a small numeric shift (within two standard errors of "
            "the resampling) — and the lab states what it still misses at its own batch size.",
            passed=all(
                rows["cvm", n].small_shift_detection_rate
                >= rows["ks", n].small_shift_detection_rate - 2 * power_se(rows, n)
                and not_above(
                    rows["cvm", n].false_alarm_rate,
                    rows["cvm", n].false_alarm_trials,
                    alpha,
                    len(params.sample_sizes),
                )
                for n in params.sample_sizes
            ),
            measured={
                f"{m}_small_shift_detection_n{n}": rows[m, n].small_shift_detection_rate
                for m in ("cvm", "ks")
                for n in params.sample_sizes
            }
            | {f"two_se_n{n}": 2 * power_se(rows, n) for n in params.sample_sizes},
        ),
    ]


def power_se(rows: Mapping[tuple[str, int], StudyRow], n: int) -> float:
    """Standard error of the difference of two detection rates over the study's resamples."""
    cvm, ks = rows["cvm", n], rows["ks", n]
    variance = sum(
        r.small_shift_detection_rate * (1 - r.small_shift_detection_rate) for r in (cvm, ks)
    )
    return math.sqrt(variance / cvm.resamples)
