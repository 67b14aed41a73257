"""Lab drift: every claim asserted from its numbers, on small, fast parameters."""

from __future__ import annotations

import json
import math
from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from labs.common.data import CATEGORIES, FEATURES, make_churn_data
from labs.common.drift import chi2_two_sample_pvalue, detect_drift
from labs.common.results import LabResult, finish
from labs.drift.lab import DriftParams, run
from labs.drift.study import (
    category_counts,
    chi2_goodness_of_fit_pvalues,
    chi2_two_sample_pvalues,
    jensen_shannon,
    ks_pvalues,
    run_study,
    wasserstein_normed,
)

ALPHA = 0.05
SMALL = DriftParams(
    train_rows=1500,
    batch_rows=600,
    resamples=80,
    sample_sizes=(100, 10000),
    study_row_budget=200_000,
)


def measured(result: LabResult, claim: str) -> dict:
    return dict(result.claim(claim).measured)


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> LabResult:
    return run(SMALL, tmp_path_factory.mktemp("drift"))


def test_no_drift_nothing_flagged_and_quality_holds(lab: LabResult) -> None:
    m = measured(lab, "no_drift_nothing_flagged")
    assert m["flagged_columns"] == []
    assert m["smallest_p_value"] >= m["threshold"]
    assert abs(m["roc_auc_drop"]) < SMALL.quality_drop_alert


def test_covariate_drift_flagged_on_exactly_the_shifted_columns(lab: LabResult) -> None:
    m = measured(lab, "covariate_detected")
    assert m["p_value_monthly_charges"] < m["threshold"]
    assert m["p_value_contract"] < m["threshold"]
    exact = measured(lab, "covariate_columns_exact")
    assert sorted(exact["flagged_features"]) == exact["shifted"] == ["contract", "monthly_charges"]
    # P(churn | x) did not change, so the model still ranks customers about as well.
    assert exact["roc_auc_current"] > exact["roc_auc_reference"] - 0.05


def test_concept_drift_invisible_to_features_but_caught_by_performance(lab: LabResult) -> None:
    invisible = measured(lab, "concept_invisible_to_feature_tests")
    assert invisible["flagged_features"] == []
    assert invisible["flag_rate_max"] <= invisible["bound"]
    caught = measured(lab, "concept_caught_by_performance")
    assert caught["roc_auc_reference"] - caught["roc_auc_current"] > 0.2
    assert caught["accuracy_reference"] - caught["accuracy_current"] > SMALL.quality_drop_alert
    # Not a prior shift in disguise: the churn rate barely moved.
    assert abs(caught["churn_rate_current"] - 0.27) < 0.06


def test_prior_shift_shows_as_target_and_prediction_drift(lab: LabResult) -> None:
    m = measured(lab, "prior_shift_detected")
    assert m["churn_rate_current"] == pytest.approx(SMALL.prior_churn_rate, abs=0.01)
    assert m["p_value_target"] < 1e-6 and m["p_value_prediction"] < 0.005
    assert m["predicted_churn_rate_current"] < m["churn_rate_current"]
    assert m["precision_current"] > m["precision_reference"]  # more churners among the flagged


def test_false_alarm_and_sample_size_claims(lab: LabResult) -> None:
    fa = measured(lab, "false_alarm_rate_at_most_alpha")
    rates = {k: v for k, v in fa.items() if k != "bound_max"}
    assert set(rates) == {f"{m}_n{n}" for m in ("ks", "chi2_two_sample") for n in (100, 10000)}
    assert max(rates.values()) <= fa["bound_max"]
    naive = measured(lab, "naive_chi_square_false_alarms")
    assert min(naive["n100"], naive["n10000"]) >= 3 * ALPHA
    trade = measured(lab, "sample_size_tradeoff")
    assert trade["wasserstein_false_alarms_n100"] > 0.5
    assert (
        trade["ks_small_shift_detection_n10000"]
        >= 0.9
        > 0.25
        >= trade["ks_small_shift_detection_n100"]
    )


def test_every_claim_holds_and_the_contract_files_exist(lab: LabResult, tmp_path, capsys) -> None:
    assert lab.passed, [c.id for c in lab.claims if not c.passed]
    assert finish(lab, tmp_path) == 0
    data = json.loads((tmp_path / "summary.json").read_text())
    assert data["mlflow"]["experiment"] == "lab-drift" and data["mlflow"]["run_id"]
    pngs = [Path(a) for a in data["artifacts"] if a.endswith(".png")]
    htmls = [Path(a) for a in data["artifacts"] if a.endswith(".html")]
    assert len(pngs) == 2 and len(htmls) == 4
    assert all(p.stat().st_size > 20_000 for p in pngs)
    # Evidently's report is self-contained and shows our two-sample test by name.
    assert "chi-square two-sample" in htmls[1].read_text(errors="ignore")
    assert "✓ concept_caught_by_performance" in capsys.readouterr().out


def test_mlflow_has_one_nested_run_per_scenario(lab: LabResult) -> None:
    import mlflow

    parent = mlflow.get_run(lab.mlflow["run_id"])
    assert parent.data.metrics["claim.concept_caught_by_performance.passed"] == 1.0
    children = mlflow.search_runs(
        experiment_ids=[parent.info.experiment_id],
        filter_string=f"tags.mlflow.parentRunId = '{parent.info.run_id}'",
    )
    assert sorted(children["tags.mlflow.runName"]) == ["concept", "covariate", "no_drift", "prior"]
    concept = children[children["tags.mlflow.runName"] == "concept"].iloc[0]
    assert concept["metrics.n_drifted_features"] == 0 and concept["metrics.roc_auc"] < 0.6


def test_same_seed_same_numbers(lab: LabResult, tmp_path: Path) -> None:
    again = run(SMALL, tmp_path)
    assert [c.measured for c in again.claims] == [c.measured for c in lab.claims]


def test_a_claim_that_must_not_hold_fails_the_lab(tmp_path: Path, capsys) -> None:
    # "Covariate" scenario with no actual shift: nothing to detect, so the claim fails.
    no_shift = {"monthly_charges": 0.0, "contract": CATEGORIES["contract"]}
    result = run(replace(SMALL, covariate_shift=no_shift, resamples=40), tmp_path)
    assert not result.claim("covariate_detected").passed
    assert result.claim("no_drift_nothing_flagged").passed
    assert finish(result, tmp_path) == 1
    assert "✗ covariate_detected" in capsys.readouterr().out


# --- the tests themselves: false alarms over resamples, and faithful to Evidently ---------


@pytest.fixture(scope="module")
def no_drift_study():
    return run_study(
        sizes=(200,),
        resamples=300,
        alpha=ALPHA,
        shift={"monthly_charges": 12.0, "contract": {"month-to-month": 1.0}},
        small_shift={"monthly_charges": 2.0, "contract": {"month-to-month": 1.0}},
        concept_drift=0.6,
        seed=11,
    )


@pytest.mark.parametrize(
    ("method", "kind"), [("ks", "numeric"), ("chi2_two_sample", "categorical")]
)
def test_chosen_tests_false_alarm_at_most_alpha(no_drift_study, method, kind) -> None:
    row = next(r for r in no_drift_study if r.method == method)
    assert row.kind == kind and row.false_alarm_trials >= 900
    assert row.false_alarm_rate <= ALPHA + 3 * math.sqrt(
        ALPHA * (1 - ALPHA) / row.false_alarm_trials
    )


def test_evidently_default_chi_square_would_fail_that_test(no_drift_study) -> None:
    row = next(r for r in no_drift_study if r.method == "chi2_goodness_of_fit")
    assert row.false_alarm_rate > 0.15


def _samples(seed: int, n: int = 400) -> tuple[pd.DataFrame, pd.DataFrame]:
    return make_churn_data(n, seed=seed), make_churn_data(n, seed=seed + 100)


def test_vectorised_tests_equal_scipy_and_evidently() -> None:
    from evidently.legacy.calculations.stattests.chisquare_stattest import _chi_stat_test
    from evidently.legacy.calculations.stattests.jensenshannon import _jensenshannon
    from evidently.legacy.calculations.stattests.wasserstein_distance_norm import (
        _wasserstein_distance_norm,
    )
    from evidently.legacy.core import ColumnType

    for seed in range(3):
        ref, cur = _samples(seed)
        a, b = ref["monthly_charges"].to_numpy(), cur["monthly_charges"].to_numpy()
        assert ks_pvalues(a[None], b[None])[0] == pytest.approx(
            stats.ks_2samp(a, b, method="asymp").pvalue, rel=1e-9
        )
        assert wasserstein_normed(a[None], b[None])[0] == pytest.approx(
            _wasserstein_distance_norm(
                ref["monthly_charges"], cur["monthly_charges"], ColumnType.Numerical, 0.1
            )[0]
        )
        labels = list(CATEGORIES["payment_method"])
        rc = category_counts(pd.Categorical(ref["payment_method"], labels).codes[None], len(labels))
        cc = category_counts(pd.Categorical(cur["payment_method"], labels).codes[None], len(labels))
        assert chi2_two_sample_pvalues(rc, cc)[0] == pytest.approx(
            stats.chi2_contingency(np.vstack([rc, cc]), correction=False).pvalue, rel=1e-9
        )
        cat = ColumnType.Categorical
        ref_s, cur_s = ref["payment_method"].astype(str), cur["payment_method"].astype(str)
        assert chi2_goodness_of_fit_pvalues(rc, cc)[0] == pytest.approx(
            _chi_stat_test(ref_s, cur_s, cat, 0.05)[0], rel=1e-9
        )
        assert jensen_shannon(rc, cc)[0] == pytest.approx(
            _jensenshannon(ref_s, cur_s, cat, 0.1)[0], rel=1e-9
        )


def test_detect_drift_runs_our_tests_inside_evidently() -> None:
    ref, cur = _samples(5, n=300)
    result = detect_drift(ref, cur, alpha=ALPHA)
    assert result["contract"].p_value == pytest.approx(
        chi2_two_sample_pvalue(ref["contract"], cur["contract"]), rel=1e-9
    )
    assert result["age"].p_value == pytest.approx(
        stats.ks_2samp(ref["age"], cur["age"]).pvalue, rel=1e-9
    )
    assert result["age"].threshold == pytest.approx(ALPHA / len(FEATURES))


# --- bad input ---------------------------------------------------------------------------


def test_different_columns_are_named() -> None:
    ref, cur = _samples(1, n=100)
    cur = cur.rename(columns={"monthly_charges": "monthly_fee"}).drop(columns="age")
    with pytest.raises(
        ValueError, match=r"missing in current \['age', 'monthly_charges'\].*\['monthly_fee'\]"
    ):
        detect_drift(ref, cur)


def test_empty_current_batch_is_refused() -> None:
    ref, cur = _samples(1, n=100)
    with pytest.raises(ValueError, match="current batch is empty"):
        detect_drift(ref, cur.iloc[:0])


def test_constant_columns_are_handled_not_a_crash() -> None:
    ref, cur = _samples(2, n=200)
    for frame in (ref, cur):
        frame["plan_version"] = 3.0
        frame["region"] = "eu"
    result = detect_drift(ref, cur, numeric=["age", "plan_version"], categorical=["region"])
    assert result["plan_version"].p_value == 1.0 and not result["plan_version"].drifted
    assert result["region"].p_value == 1.0 and not result["region"].drifted


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"alpha": 0.0}, r"drift\.alpha"),
        ({"batch_rows": 10}, r"drift\.batch_rows must be >= 50"),
        ({"sample_sizes": (100,)}, r"drift\.sample_sizes"),
    ],
)
def test_bad_params_are_refused(change: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        replace(SMALL, **change)
