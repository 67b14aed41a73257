"""Lab testing: every claim asserted from its numbers on small parameters, with the negative
side of each kind of test (the correct candidate passes, the defective one fails), and the
matrix of planted faults × kinds of tests shown to break under a counterfactual.

The lab runs once in a module fixture; its stress part starts locust as a subprocess — this
test process never imports locust (checked below). Latencies are never asserted here: the
stress goals are checked by ``benchmarks/bench_testing.py``, which exits non-zero on a miss."""

from __future__ import annotations

import sys
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from labs.common.catalogue import topic
from labs.common.data import make_churn_data
from labs.common.model import TrainParams, train_model
from labs.common.plots import read_drawing
from labs.common.results import LabResult, finish, read_summary
from labs.testing import abtest, matrix, stress, unit
from labs.testing.counterfactuals import COUNTERFACTUALS
from labs.testing.lab import TestingParams, run

SMALL = TestingParams(
    train_rows=1000,
    holdout_rows=400,
    hypothesis_examples=10,
    noise_seeds=3,
    stress_users=(1, 4, 16),
    stress_step_seconds=1.5,
    ab_simulations=600,
    robust_rows=300,
)
# Claims decided by latencies on this machine: their goals are the benchmark's, not the tests'.
TIMED = {"stress_knee"}
CLAIMS = [
    "unit_contract_catches_batch_statistics",
    "integration_over_http",
    "performance_gate",
    "stress_knee",
    "ab_power",
    "ab_aa_false_positives",
    "ab_peeking_inflates",
    "robustness_checklist",
    "every_kind_tells_them_apart",
]


def measured(result: LabResult, claim: str) -> dict:
    return dict(result.claim(claim).measured)


@pytest.fixture(scope="module")
def out(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("testing")


@pytest.fixture(scope="module")
def lab(out: Path) -> LabResult:
    return run(SMALL, out)


def test_summary_is_valid_and_every_claim_holds(lab: LabResult, out: Path) -> None:
    finish(lab, out)
    summary = read_summary(out / "summary.json")
    assert summary.question == topic("testing").question
    assert [c.id for c in summary.claims] == CLAIMS
    assert [c.id for c in summary.claims if not c.passed and c.id not in TIMED] in (
        [],
        ["every_kind_tells_them_apart"],  # only if its stress cells (latencies) missed; below
    )
    assert summary.mlflow["experiment"] == "lab-testing"
    assert "locust" not in sys.modules  # the load generator ran as a subprocess only


def test_unit_contract_passes_the_fitted_step_and_fails_the_batch_transform(
    lab: LabResult,
) -> None:
    m = measured(lab, "unit_contract_catches_batch_statistics")
    assert m["correct"]["failed_tests"] == []
    assert m["correct"]["examples"]["batch_independence"] == SMALL.hypothesis_examples
    bad = m["defective"]
    assert {"batch_independence", "category_columns"} <= set(bad["failed_tests"])
    # hypothesis found a batch of at least two rows (one row alone cannot show batch stats)
    assert bad["failing_batch_rows"]["batch_independence"] >= 2
    # the shape/dtype and row-order properties do not see this defect: said, not hidden
    assert "row_order" not in bad["failed_tests"]


def test_integration_round_trips_exactly_and_catches_the_renamed_column(lab: LabResult) -> None:
    m = measured(lab, "integration_over_http")
    good = m["correct"]
    assert good["statuses"] == {"200": good["requests"]}
    assert good["rows_answered"] == SMALL.holdout_rows
    assert good["max_abs_dp"] <= 1e-9 and good["labels_differing"] == 0
    bad = m["renamed_column"]
    assert bad["ok_requests"] == 0 and bad["rows_answered"] == 0
    assert bad["statuses"] == {"503": bad["requests"]}
    assert m["corrupt_request"]["status"] == 422
    assert "monthly_charges" in m["corrupt_request"]["message"]


def test_gate_margin_comes_from_seed_noise_and_names_the_failing_metric(lab: LabResult) -> None:
    m = measured(lab, "performance_gate")
    assert m["margin"] == pytest.approx(SMALL.noise_sigmas * m["seed_noise_roc_auc_std"])
    assert m["correct"]["roc_auc"] >= SMALL.min_roc_auc
    assert m["correct"]["roc_auc"] - m["champion"]["roc_auc"] > m["margin"]
    assert m["correct"]["roc_auc"] - m["dummy"]["roc_auc"] > m["margin"]
    assert m["correct"]["calibration_error"] <= SMALL.max_calibration_error
    assert m["degraded"]["calibration_error"] > SMALL.max_calibration_error
    failure = next(f for f in m["degraded_failures"] if "calibration_error" in f)
    assert f"{m['degraded']['calibration_error']}" in failure and "threshold = 0.05" in failure


def test_stress_defect_gives_the_same_answers_for_more_work(lab: LabResult, out: Path) -> None:
    m = measured(lab, "stress_knee")
    # the planted defect is only slow: the correct model's answers, copies × the work per call
    assert m["slow_copies"] >= 2
    assert m["slow_max_abs_dp_vs_correct"] <= 1e-9
    assert m["users"] == list(SMALL.stress_users)
    assert m["correct_error_rate_max"] == 0.0
    # Our samples agree with locust's --csv counts up to the requests in flight when locust
    # stops its users: at most one per user.
    for name, ours in m["requests"].items():
        assert ours > 0
        assert abs(ours - m["locust_csv_requests"][name]) <= max(SMALL.stress_users)
    drawn = read_drawing(out / "stress_ramp.png")["axes"][0]
    lines = {line["label"]: line for line in drawn["lines"]}
    assert lines["bagged ensemble"]["y"] == pytest.approx(m["slow_p99_ms"], nan_ok=True)
    assert lines["correct (compiled scorer)"]["x"] == [1.0, 4.0, 16.0]


def test_each_kind_catches_its_fault_and_misses_the_others(lab: LabResult) -> None:
    m = measured(lab, "every_kind_tells_them_apart")
    fails = m["fails"]
    assert set(fails) == {"correct", *matrix.FAULTS}
    for fault, kind in matrix.FAULTS.items():
        if kind != "stress":  # the stress cell is a latency: the benchmark's goal
            assert fails[fault][kind] is True, (fault, kind)
        # the kinds that run in process meet every fault; only its own one catches it
        for other in ("unit", "gate", "robustness"):
            if other != kind:
                assert fails[fault][other] is False, (fault, other)
    assert not any(fails["correct"][k] for k in ("unit", "integration", "gate", "robustness"))
    # integration runs on the served candidates only, and the slow one passes it
    assert fails["slow_ensemble"]["integration"] is False
    assert fails["label_noise"]["integration"] is None
    assert min(m["other_kinds_run_per_fault"].values()) >= 2


@pytest.fixture(scope="module")
def never_meets_production(tmp_path_factory: pytest.TempPathFactory) -> LabResult:
    cf = COUNTERFACTUALS.get("suite-never-meets-production")
    return COUNTERFACTUALS.run_with(
        cf, COUNTERFACTUALS.small(TestingParams()), tmp_path_factory.mktemp("testing-cf")
    )


@pytest.mark.counterfactual
def test_a_suite_that_never_meets_production_cannot_tell_the_faults_apart(
    never_meets_production: LabResult,
) -> None:
    result = never_meets_production
    m = measured(result, "every_kind_tells_them_apart")
    assert not result.claim("every_kind_tells_them_apart").passed
    # robustness without the schema fails every candidate alike, the correct one included
    assert "robustness" in m["false_alarms_on_correct"]
    assert {f"robustness catches {f}" for f in matrix.FAULTS if f != "no_schema"} <= set(
        m["caught_by_another_kind"]
    )
    # the in-process "integration" test lets the renamed column through
    assert "renamed_column" in m["own_fault_missed"]
    assert m["fails"]["renamed_column"]["integration"] is False
    inter = measured(result, "integration_over_http")["renamed_column"]
    assert inter["failed_requests"] == 0 and inter["max_abs_dp"] <= 1e-12
    assert not result.claim("integration_over_http").passed
    assert not result.claim("robustness_checklist").passed
    # one user is a latency benchmark: no step with a second user, so no knee to find
    assert measured(result, "stress_knee")["users"] == [1]
    assert not result.claim("stress_knee").passed


def test_ab_power_aa_and_peeking_from_the_numbers(lab: LabResult, out: Path) -> None:
    power = measured(lab, "ab_power")
    assert power["n_per_arm"] == abtest.sample_size(
        power["p_control"], power["p_treatment"], SMALL.ab_alpha, SMALL.ab_power
    )
    assert abs(power["power_fixed"] - SMALL.ab_power) <= SMALL.ab_power_tolerance
    aa = measured(lab, "ab_aa_false_positives")
    assert aa["aa_fixed_ci_low"] <= SMALL.ab_alpha <= aa["aa_fixed_ci_high"]
    assert aa["ztest_crosscheck_abs_diff"] < 1e-9  # our z equals statsmodels' proportions_ztest
    peek = measured(lab, "ab_peeking_inflates")
    assert peek["aa_peeking_ci_low"] > SMALL.ab_alpha
    assert peek["inflation"] >= SMALL.peeking_inflation
    assert peek["aa_pocock_ci_low"] <= SMALL.ab_alpha <= peek["aa_pocock_ci_high"]
    by_looks = [peek["peeking_by_looks"][k] for k in sorted(peek["peeking_by_looks"], key=int)]
    assert by_looks == sorted(by_looks)  # more looks, more false positives
    bars = read_drawing(out / "ab_false_positives.png")["axes"][0]["bars"]
    assert bars[0]["heights"] == pytest.approx(
        [aa["aa_fixed"], peek["aa_peeking"], peek["aa_pocock"]]
    )


def test_robustness_validated_model_holds_and_overfit_tree_breaks(lab: LabResult) -> None:
    m = measured(lab, "robustness_checklist")
    good, bad = m["correct"], m["overfit_unvalidated"]
    assert good["flipped_share"] <= SMALL.invariance_max_flip < bad["flipped_share"]
    assert good["directional_violation_share"] == 0 < bad["directional_violation_share"]
    assert good["corrupt_refused"] == good["corrupt_cases"] == 8
    assert bad["corrupt_refused"] == 0 and bad["corrupt_crashed"] + bad["corrupt_silent"] == 8


# --- the parts, directly ----------------------------------------------------------------


def test_knee_and_step_summary_on_known_samples() -> None:
    rows = [{"t": i * 0.1, "users": 1, "ms": 10.0, "ok": True} for i in range(50)]
    rows += [{"t": 5 + i * 0.01, "users": 2, "ms": 300.0, "ok": True} for i in range(50)]
    steps = stress.summarise_steps(rows, (1, 2))
    assert steps[0]["p99_ms"] == 10.0 and steps[1]["p99_ms"] == 300.0
    assert steps[0]["rps"] == pytest.approx(50 / 4.9)
    assert stress.knee(steps, 100.0) == 2
    assert stress.knee(steps, 500.0) is None


def test_peeking_with_one_look_is_the_fixed_horizon_test() -> None:
    rng = np.random.default_rng(0)
    z = abtest.z_statistics(rng, 0.25, 0.25, 2000, 1, 500)
    assert z.shape == (500, 1)
    assert abtest.pocock_boundary(1, 0.05, seed=1) == pytest.approx(1.96, abs=0.02)


def test_a_correct_transform_with_a_planted_order_bug_is_caught() -> None:
    train = make_churn_data(500, seed=1)
    model = train_model(train, TrainParams())
    pre, clf = model.named_steps["preprocess"], model.named_steps["classifier"]
    columns = unit.model_column_order(pre)
    fitted = unit.fitted_transform(pre)
    reversed_rows = lambda batch: fitted(batch)[::-1]  # noqa: E731 — rows come back reversed
    by_name = {r.name: r for r in unit.check_properties(reversed_rows, clf, len(columns), 10)}
    assert not by_name["row_order"].passed
    assert by_name["shape_and_dtype"].passed
    assert unit.check_category_columns(fitted, columns).passed


def test_params_refuse_a_decreasing_ramp() -> None:
    with pytest.raises(ValueError, match="stress_users"):
        replace(SMALL, stress_users=(4, 1))
