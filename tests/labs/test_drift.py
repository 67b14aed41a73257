"""Lab drift: every claim asserted from its numbers, on small, fast parameters."""

from __future__ import annotations

import math
from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from labs.common.catalogue import topic
from labs.common.data import (
    CATEGORIES,
    FEATURES,
    ORDINAL_FEATURES,
    PROBA,
    TARGET,
    make_churn_data,
)
from labs.common.drift import FAMILY_MARGIN, ORDERED, detect_drift, report_p_values
from labs.common.drift_tests import chi2_two_sample_pvalue, cvm_two_sample_pvalue, ordered_pvalue
from labs.common.plots import read_drawing
from labs.common.results import Summary, finish, read_summary
from labs.drift import counterfactuals as cf
from labs.drift.lab import DriftParams, run
from labs.drift.study import (
    METHOD_LABELS,
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


def measured(summary: Summary, claim: str) -> dict:
    return dict(summary.claim(claim).measured)


def run_and_read(params: DriftParams, out_dir: Path) -> tuple[int, Summary]:
    """Run the lab as ``lab_main`` does: its exit code and its summary, read back validated."""
    code = finish(run(params, out_dir), out_dir)
    return code, read_summary(out_dir / "summary.json")


@pytest.fixture(scope="module")
def lab_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[int, Summary]:
    return run_and_read(SMALL, tmp_path_factory.mktemp("drift"))


@pytest.fixture(scope="module")
def lab(lab_run: tuple[int, Summary]) -> Summary:
    return lab_run[1]


def test_no_drift_nothing_flagged_and_quality_holds(lab: Summary) -> None:
    m = measured(lab, "no_drift_nothing_flagged")
    assert m["flagged_columns"] == []
    assert m["smallest_p_value"] >= m["threshold"]
    assert abs(m["roc_auc_drop"]) < SMALL.quality_drop_alert


def test_covariate_drift_flagged_on_exactly_the_shifted_columns(lab: Summary) -> None:
    m = measured(lab, "covariate_detected")
    assert m["p_value_monthly_charges"] < m["threshold"]
    assert m["p_value_contract"] < m["threshold"]
    exact = measured(lab, "covariate_columns_exact")
    assert sorted(exact["flagged_features"]) == exact["shifted"] == ["contract", "monthly_charges"]
    # P(churn | x) did not change, so the model still ranks customers about as well.
    assert exact["roc_auc_current"] > exact["roc_auc_reference"] - 0.05


def test_concept_drift_invisible_to_features_but_caught_by_performance(lab: Summary) -> None:
    invisible = measured(lab, "concept_invisible_to_feature_tests")
    assert invisible["flagged_features"] == []
    assert invisible["smallest_p_above_alpha"] > invisible["level_per_rate"] == 0.05 / 4
    caught = measured(lab, "concept_caught_by_performance")
    assert caught["roc_auc_reference"] - caught["roc_auc_current"] > 0.2
    assert caught["accuracy_reference"] - caught["accuracy_current"] > SMALL.quality_drop_alert
    # Not a prior shift in disguise: the churn rate barely moved.
    assert abs(caught["churn_rate_current"] - 0.27) < 0.06


def test_prior_shift_shows_as_target_and_prediction_drift(lab: Summary) -> None:
    m = measured(lab, "prior_shift_detected")
    assert m["churn_rate_current"] == pytest.approx(SMALL.prior_churn_rate, abs=0.01)
    assert m["p_value_target"] < 1e-6 and m["p_value_prediction"] < 0.005
    assert m["predicted_churn_rate_current"] < m["churn_rate_current"]
    assert m["precision_current"] > m["precision_reference"]  # more churners among the flagged


def test_false_alarm_and_sample_size_claims(lab: Summary) -> None:
    fa = measured(lab, "false_alarm_rate_at_most_alpha")
    # The detector, family-wise: one trial per independent no-drift batch pair.
    assert fa["batches"] == SMALL.false_alarm_batches == 200
    assert fa["alarm_rate"] == fa["alarms"] / fa["batches"]
    assert fa["alarms"] < fa["alarms_that_would_reject"] == 16  # binom(200, 0.05): P(≥16) < 5 %
    assert fa["p_value_rate_above_alpha"] > 0.05 and fa["power_at_2alpha"] >= 0.8
    assert fa["upper_bound_95"] < 2 * ALPHA
    assert fa["column_threshold"] == pytest.approx(FAMILY_MARGIN * ALPHA / 9)
    naive = measured(lab, "naive_chi_square_false_alarms")
    assert naive["lower_bound_min"] > naive["two_alpha"] == 2 * ALPHA
    assert min(naive["n100"], naive["n10000"]) > naive["lower_bound_min"]
    trade = measured(lab, "sample_size_tradeoff")
    assert trade["wasserstein_false_alarms_n100"] > 0.5
    assert trade["wasserstein_false_alarms_n10000"] <= ALPHA
    assert (
        trade["cvm_small_shift_detection_n10000"]
        >= 0.9
        > 0.25
        >= trade["cvm_small_shift_detection_n100"]
    )


# --- counterfactuals: a broken part turns its claim ✗, through the lab --------------------

BROKEN_SMALL = replace(SMALL, train_rows=800, batch_rows=300, resamples=30, study_row_budget=30_000)


@pytest.fixture(scope="module")
def uncorrected(tmp_path_factory: pytest.TempPathFactory) -> Summary:
    """The lab with the detector's Bonferroni correction removed."""
    out = tmp_path_factory.mktemp("drift-uncorrected")
    finish(run(BROKEN_SMALL, out, threshold_rule=cf.uncorrected_threshold), out)
    return read_summary(out / "summary.json")


@pytest.mark.counterfactual
def test_without_correction_the_false_alarm_claim_fails(uncorrected: Summary) -> None:
    claim = uncorrected.claim("false_alarm_rate_at_most_alpha")
    fa = dict(claim.measured)
    assert not claim.passed and fa["column_threshold"] == ALPHA  # every column at full α
    # 9 columns at 5 % each: about a third of no-drift batches raise some alarm.
    assert fa["alarms"] >= fa["alarms_that_would_reject"] and fa["alarm_rate"] > 0.2
    assert fa["p_value_rate_above_alpha"] < 1e-6 and fa["power_at_2alpha"] >= 0.8


def test_every_claim_holds_and_the_contract_files_exist(lab_run) -> None:
    code, lab = lab_run
    assert code == 0 and lab.passed, [c.id for c in lab.claims if not c.passed]
    assert lab.lab == "drift" and lab.question == topic("drift").question
    assert lab.mlflow["experiment"] == "lab-drift" and len(lab.mlflow["run_id"]) == 32
    names = sorted(Path(a).name for a in lab.artifacts)
    assert names == sorted(
        ["drift_vs_quality.png", "false_alarms_vs_sample_size.png", "scenarios.csv"]
        + ["false_alarms.csv"]
        + [f"report_{s}.html" for s in ("no_drift", "covariate", "concept", "prior")]
    )
    # Evidently's report is self-contained and shows our two-sample test by name.
    covariate_html = next(Path(a) for a in lab.artifacts if a.endswith("report_covariate.html"))
    assert "chi-square two-sample" in covariate_html.read_text(errors="ignore")
    # The CSV holds the same numbers as the claims.
    scenarios = pd.read_csv(next(Path(a) for a in lab.artifacts if a.endswith("scenarios.csv")))
    concept = scenarios.set_index("scenario").loc["concept"]
    caught = measured(lab, "concept_caught_by_performance")
    assert concept["roc_auc"] == pytest.approx(caught["roc_auc_current"])


def test_the_scenario_plot_draws_the_measured_numbers(lab: Summary) -> None:
    drawn = read_drawing(next(Path(a) for a in lab.artifacts if a.endswith("drift_vs_quality.png")))
    inputs, performance = drawn["axes"]
    assert inputs["xticklabels"] == ["no_drift", "covariate", "concept", "prior"]
    assert performance["xticklabels"] == inputs["xticklabels"]
    assert inputs["ylim"] == performance["ylim"] == [0.0, 1.0]  # shares and scores on 0–1
    (shares,) = inputs["bars"]
    covariate = measured(lab, "covariate_columns_exact")
    prior = measured(lab, "prior_shift_detected")
    assert shares["heights"] == pytest.approx(
        [0.0, len(covariate["flagged_features"]) / len(FEATURES), 0.0]
        + [len(prior["flagged_features"]) / len(FEATURES)]
    )
    auc, accuracy = performance["bars"]
    assert (auc["label"], accuracy["label"]) == ("ROC-AUC", "accuracy")
    caught = measured(lab, "concept_caught_by_performance")
    assert auc["heights"][1:3] == pytest.approx(
        [covariate["roc_auc_current"], caught["roc_auc_current"]]
    )
    assert accuracy["heights"][2] == pytest.approx(caught["accuracy_current"])
    reference, alert = performance["lines"]
    assert reference["y"] == pytest.approx([caught["roc_auc_reference"]] * 2)
    assert alert["y"] == pytest.approx([caught["roc_auc_reference"] - SMALL.quality_drop_alert] * 2)


def test_the_study_plot_draws_the_measured_rates(lab: Summary) -> None:
    png = next(Path(a) for a in lab.artifacts if a.endswith("false_alarms_vs_sample_size.png"))
    false_alarms, tiny_shift = read_drawing(png)["axes"]
    assert false_alarms["ylim"] == tiny_shift["ylim"] == [0.0, 1.0]
    assert false_alarms["xscale"] == "log"
    lines = {line["label"]: line for line in false_alarms["lines"]}
    assert set(lines) == {*METHOD_LABELS.values(), f"α = {SMALL.alpha:g}"}
    cvm = lines[METHOD_LABELS["cvm"]]
    assert cvm["x"] == [100.0, 10000.0]
    study = pd.read_csv(next(Path(a) for a in lab.artifacts if a.endswith("false_alarms.csv")))
    rates = study[study["method"] == "cvm"].set_index("n")["false_alarm_rate"]
    assert cvm["y"] == pytest.approx([rates[100], rates[10000]])
    naive = measured(lab, "naive_chi_square_false_alarms")
    assert lines[METHOD_LABELS["chi2_goodness_of_fit"]]["y"] == pytest.approx(
        [naive["n100"], naive["n10000"]]
    )
    trade = measured(lab, "sample_size_tradeoff")
    detection = {line["label"]: line["y"] for line in tiny_shift["lines"]}
    assert detection[METHOD_LABELS["cvm"]] == pytest.approx(
        [trade["cvm_small_shift_detection_n100"], trade["cvm_small_shift_detection_n10000"]]
    )
    power = measured(lab, "power_on_the_same_budget")
    assert detection[METHOD_LABELS["ks"]] == pytest.approx(
        [power["ks_small_shift_detection_n100"], power["ks_small_shift_detection_n10000"]]
    )
    assert power["cvm_small_shift_detection_n10000"] >= power["ks_small_shift_detection_n10000"]
    for n in (100, 10000):  # never detectably worse than K-S on the same budget
        assert power[f"cvm_small_shift_detection_n{n}"] >= (
            power[f"ks_small_shift_detection_n{n}"] - power[f"two_se_n{n}"]
        )


def test_mlflow_has_one_nested_run_per_scenario(lab: Summary) -> None:
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
    # Target and prediction are tested under the project's column names (labs.common.data).
    prior = children[children["tags.mlflow.runName"] == "prior"].iloc[0]
    shift = measured(lab, "prior_shift_detected")
    assert prior[f"metrics.p_value.{TARGET}"] == pytest.approx(shift["p_value_target"])
    assert prior[f"metrics.p_value.{PROBA}"] == pytest.approx(shift["p_value_prediction"])


def test_same_seed_same_numbers_and_the_printout(lab: Summary, tmp_path: Path, capsys) -> None:
    # Without the HTML reports (they draw the same numbers; another test reads them).
    code = finish(run(replace(SMALL, html_reports=False), tmp_path, echo=print), tmp_path)
    again = read_summary(tmp_path / "summary.json")
    assert code == 0 and [c.measured for c in again.claims] == [c.measured for c in lab.claims]
    out = capsys.readouterr().out
    threshold = FAMILY_MARGIN * SMALL.alpha / 9  # 7 features, the target and the prediction
    assert f"(feature tests at α=0.05, Bonferroni: p < {threshold:.4f} per column)" in out
    assert "How far to trust an alert" in out and "✓ concept_caught_by_performance" in out
    concept_row = next(line for line in out.splitlines() if line.strip().startswith("concept "))
    caught = measured(lab, "concept_caught_by_performance")
    assert f"{caught['roc_auc_current']:.3f}" in concept_row


def test_a_claim_that_must_not_hold_fails_the_lab(tmp_path: Path, capsys) -> None:
    # "Covariate" scenario with no actual shift: nothing to detect, so the claim fails.
    no_shift = {"monthly_charges": 0.0, "contract": CATEGORIES["contract"]}
    cheap = {"resamples": 40, "false_alarm_batches": 20, "html_reports": False}
    code, summary = run_and_read(replace(SMALL, covariate_shift=no_shift, **cheap), tmp_path)
    assert code == 1 and not summary.passed
    missed = summary.claim("covariate_detected")
    assert not missed.passed
    assert missed.measured["p_value_monthly_charges"] >= missed.measured["threshold"]
    assert missed.measured["p_value_contract"] >= missed.measured["threshold"]
    assert summary.claim("no_drift_nothing_flagged").passed
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
    ("method", "kind"), [("cvm", "numeric"), ("ks", "numeric"), ("chi2_two_sample", "categorical")]
)
def test_chosen_tests_false_alarm_at_most_alpha(no_drift_study, method, kind) -> None:
    row = next(r for r in no_drift_study if r.method == method)
    assert row.kind == kind and row.false_alarm_trials >= 900
    assert row.false_alarm_rate <= ALPHA + 3 * math.sqrt(
        ALPHA * (1 - ALPHA) / row.false_alarm_trials
    )


def test_the_power_line_states_what_slips_through(no_drift_study) -> None:
    from labs.drift.report import power_line

    rows = {r.method: r for r in no_drift_study}
    caught = rows["cvm"].small_shift_detection_rate
    line = power_line(no_drift_study, 200)
    assert f"n=200): a tiny 0.1-SD numeric shift is caught in {caught:.0%}" in line
    assert f"{1 - caught:.0%} slip through" in line
    assert f"K-S on the same budget: {rows['ks'].small_shift_detection_rate:.0%}" in line
    assert power_line(no_drift_study, 999) == ""  # no study at that size: nothing claimed


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
    result = detect_drift(ref, cur, alpha=ALPHA, report=True)
    assert result["payment_method"].p_value == pytest.approx(
        chi2_two_sample_pvalue(ref["payment_method"], cur["payment_method"]), rel=1e-9
    )
    # An ordered category (the contract's length): its own test, on the declared order.
    assert result["contract"].method == ORDERED
    order = ORDINAL_FEATURES["contract"]
    assert result["contract"].p_value == ordered_pvalue(ref["contract"], cur["contract"], order)
    # Numeric columns: Cramér–von Mises (tests/common/test_drift_power.py checks it).
    for column in ("monthly_charges", "age"):
        assert result[column].p_value == cvm_two_sample_pvalue(ref[column], cur[column])
    assert result["age"].threshold == pytest.approx(FAMILY_MARGIN * ALPHA / len(FEATURES))
    # The Evidently report shows the very tests that decided, with the same p-values.
    shown = report_p_values(result.report)
    assert shown == pytest.approx({c.column: c.p_value for c in result.columns}, rel=1e-9)
    assert detect_drift(ref, cur, alpha=ALPHA).report is None  # no report asked, none built


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
