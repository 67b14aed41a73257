"""The drift lab's counterfactuals: broken parts a learner could ship, each turning claims ✗.

Every one is handed to :func:`labs.drift.lab.run` as a replacement component (the detector's
threshold rule, the baseline, how quality is scored, the simulator, a study test), so it goes
through the lab's real measurement path: the real detector, the real resampling study.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from labs.common.counterfactuals import Counterfactual, LabCounterfactuals
from labs.common.data import make_churn_data
from labs.common.drift import column_threshold
from labs.common.model import quality_metrics, split_xy
from labs.drift.lab import DriftParams, run
from labs.drift.study import chi2_two_sample_pvalues, cvm_pvalues


def uncorrected_threshold(alpha: float, columns: int) -> float:
    """Every column tested at the full alpha: no multiple-testing correction."""
    return alpha


def reference_in_cents(reference: pd.DataFrame, yesterday: pd.DataFrame) -> pd.DataFrame:
    """The baseline table exported with monthly charges in cents; live batches are in euros."""
    return reference.assign(monthly_charges=reference["monthly_charges"] * 100)


def yesterdays_batch(reference: pd.DataFrame, yesterday: pd.DataFrame) -> pd.DataFrame:
    """A sliding baseline: each batch compared with the previous batch of the same stream."""
    return yesterday


def estimated_quality(model: Any, frame: pd.DataFrame) -> dict[str, float]:
    """Quality "without waiting for labels": labels imputed from the model's own
    probabilities (confidence-based estimation), the real labels never read."""
    x, _ = split_xy(frame)
    proba = model.predict_proba(x)[:, 1]
    imputed = np.random.default_rng(len(frame)).random(len(proba)) < proba
    return quality_metrics(imputed.astype(int), proba)


def concept_with_price_rise(n: int, seed: int = 0, **knobs: Any) -> pd.DataFrame:
    """A simulator whose "concept drift" also raises prices (the new reasons to churn come with
    a price rise): P(x) moves too, so the scenario is no longer pure concept drift."""
    drift = float(knobs.get("concept_drift", 0.0))
    if drift > 0 and "covariate_shift" not in knobs:
        knobs = {**knobs, "covariate_shift": {"monthly_charges": 15.0 * drift}}
    return make_churn_data(n, seed=seed, **knobs)


def cvm_on_a_smaller_budget(a: np.ndarray, b: np.ndarray, alpha: float, distance: float) -> Any:
    """Cramér–von Mises at the detector's Bonferroni share of alpha, while K-S gets all of it."""
    return cvm_pvalues(a, b, permutations=400) < column_threshold(alpha, 9)


def wasserstein_not_normed(a: np.ndarray, b: np.ndarray, alpha: float, distance: float) -> Any:
    """Wasserstein distance in the column's own units (euros, years), not divided by its SD."""
    return np.abs(np.sort(a, axis=1) - np.sort(b, axis=1)).mean(axis=1) >= distance


def goodness_of_fit_as_two_sample(
    a: np.ndarray, b: np.ndarray, alpha: float, distance: float
) -> Any:
    """The study's stand-in for Evidently's default χ² that really runs the two-sample test."""
    return chi2_two_sample_pvalues(a, b) < alpha


COUNTERFACTUALS = LabCounterfactuals(
    "drift",
    "drift",
    DriftParams,
    run,
    (
        Counterfactual(
            "no-multiple-testing-correction",
            "every column tested at the full α (Bonferroni removed)",
            ("false_alarm_rate_at_most_alpha",),
            "Each of the 9 monitored columns is tested at α = 0.05 instead of its share of α, "
            "so a batch with no drift raises some alarm about a third of the time.",
            components={"threshold_rule": uncorrected_threshold},
        ),
        Counterfactual(
            "reference-in-cents",
            "the baseline's monthly charges are in cents",
            ("no_drift_nothing_flagged",),
            "The reference table was exported with monthly_charges in cents while live batches "
            "arrive in euros: every batch, even one with no drift, is flagged.",
            components={"reference_for": reference_in_cents},
        ),
        Counterfactual(
            "sliding-reference",
            "each batch compared with yesterday's batch",
            ("covariate_detected", "covariate_columns_exact", "prior_shift_detected"),
            "The baseline slides with the stream (yesterday's batch), so a shift that has "
            "already happened is part of the baseline: covariate drift and prior shift vanish.",
            components={"reference_for": yesterdays_batch},
        ),
        Counterfactual(
            "performance-without-labels",
            "quality estimated from the model's own probabilities",
            ("concept_caught_by_performance",),
            "Performance monitoring does not wait for labels: it scores the model against "
            "labels imputed from its own probabilities, which cannot see P(churn | x) change.",
            components={"score_quality": estimated_quality},
        ),
        Counterfactual(
            "concept-drift-moves-prices",
            "the simulated concept drift also raises prices",
            ("concept_invisible_to_feature_tests",),
            "The simulator's concept drift comes with a price rise, so the 'concept' batches "
            "also change P(x) and feature tests fire: what they see is covariate drift.",
            components={"draw_batch": concept_with_price_rise},
        ),
        Counterfactual(
            "unequal-test-budgets",
            "the power study gives Cramér–von Mises a smaller α than K-S",
            ("power_on_the_same_budget",),
            "The power comparison tests Cramér–von Mises at the detector's Bonferroni share of "
            "α and K-S at the full α: not the same budget, so K-S looks more powerful.",
            components={"study_tests": {"cvm": cvm_on_a_smaller_budget}},
        ),
        Counterfactual(
            "wasserstein-not-normed",
            "Wasserstein distance not divided by the column's SD",
            ("sample_size_tradeoff",),
            "The Wasserstein distance is compared with 0.1 in euros and years instead of "
            "standard deviations: it fires at every batch size and shows no trade-off.",
            components={"study_tests": {"wasserstein_normed": wasserstein_not_normed}},
        ),
        Counterfactual(
            "evidently-default-misreplicated",
            "the study's stand-in for Evidently's default χ² is the two-sample test",
            ("naive_chi_square_false_alarms",),
            "The study's copy of Evidently's goodness-of-fit χ² compares two samples instead of "
            "taking the reference proportions as exact: the flaw it should expose disappears.",
            components={"study_tests": {"chi2_goodness_of_fit": goodness_of_fit_as_two_sample}},
        ),
    ),
    audit_params={
        "train_rows": 1500,
        "batch_rows": 600,
        "resamples": 20,  # the shortest allowed, where no claim the run decides reads the study
        "sample_sizes": (100, 1000, 10000),
        "study_row_budget": 120_000,
        "false_alarm_batches": 20,
        "html_reports": False,
    },
    # the resampling study and the false-alarm count, full length where they decide a claim
    claim_params={
        "false_alarm_rate_at_most_alpha": {"false_alarm_batches": 200},
        **dict.fromkeys(
            (
                "concept_invisible_to_feature_tests",
                "naive_chi_square_false_alarms",
                "sample_size_tradeoff",
                "power_on_the_same_budget",
            ),
            {"resamples": 60},
        ),
    },
)
