"""Lab data_quality: every claim asserted from its numbers, on small, fast parameters."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pandas as pd
import pytest

from labs.common.catalogue import topic
from labs.common.data import make_churn_data
from labs.common.plots import read_drawing
from labs.common.results import LabResult, finish, read_summary
from labs.common.schema import BatchExpectations
from labs.data_quality.counterfactuals import (
    MemoryStore,
    hotfix_assumes_thousandths,
    naive_gate,
    types_only_gate,
)
from labs.data_quality.lab import run
from labs.data_quality.params import DataQualityParams
from labs.data_quality.steps import (
    gate,
    hotfix_units,
    loses_nothing,
    plant_problems,
    probabilities,
    reference_medians,
    unit_change,
    with_ids,
)

SMALL = DataQualityParams(
    train_rows=1200,
    batch_rows=400,
    stream_days=6,
    rows_per_day=200,
    incident_day=2,
    hotfix_day=4,
)


def measured(result: LabResult, claim: str) -> dict:
    return dict(result.claim(claim).measured)


@pytest.fixture(scope="module")
def out_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("data_quality")


@pytest.fixture(scope="module")
def lab(out_dir: Path) -> LabResult:
    return run(SMALL, out_dir)


def test_a_clean_batch_is_not_quarantined(lab: LabResult) -> None:
    m = measured(lab, "clean_batch_passes")
    assert m["rows"] == SMALL.batch_rows
    assert m["quarantined_rows"] == 0 and m["batch_reasons"] == []


def test_gate_loses_nothing_row_for_row(lab: LabResult, out_dir: Path) -> None:
    m = measured(lab, "gate_loses_nothing")
    assert m["valid_rows"] + m["quarantined_rows"] == m["input_rows"] == SMALL.batch_rows
    assert m["missing_rows"] == m["duplicated_rows"] == m["rows_changed"] == 0
    assert m["planted_rows_caught"] == m["planted_bad_rows"] == m["quarantined_rows"]
    assert m["clean_rows_quarantined"] == 0
    assert sum(m["by_reason"].values()) == m["quarantined_rows"]  # one problem per planted row
    # the quarantine is kept, with a reason per row
    (kept,) = (out_dir / "quarantine").glob("dirty-batch-*.csv")
    table = pd.read_csv(kept)
    assert len(table) == m["quarantined_rows"] and table["reasons"].notna().all()
    lazy = measured(lab, "lazy_reports_every_failure")
    assert lazy["reported_in_one_pass"] == lazy["planted_kinds"]
    assert len(lazy["planted_kinds"]) == 6


def test_gate_refuses_above_the_threshold_only(lab: LabResult) -> None:
    m = measured(lab, "gate_refuses_above_threshold")
    assert m["accepted_batch_bad_share"] <= m["max_bad_share"] < m["refused_batch_bad_share"]
    assert m["refused_batch_bad_share"] == pytest.approx(SMALL.bad_batch_rate, abs=0.01)


def test_signature_accepts_unit_changes_and_predictions_flip(lab: LabResult) -> None:
    m = measured(lab, "signature_accepts_unit_change")
    assert m["incident_accepted"] is True and m["renamed_column_accepted"] is False
    # flips grow with the factor: ×2 ~40 %, ×3 ~70 %, ×100 ~80 %
    assert 0.3 <= m["flip_rate_x2"] < m["flip_rate_x3"] < m["flip_rate_x100"] <= 0.95


def test_contract_and_drift_report_point_at_the_broken_columns(lab: LabResult) -> None:
    m = measured(lab, "contract_refuses_the_incident")
    assert m["bad_share"] == 1.0
    assert m["by_reason"]["monthly_charges: in_range(0.0, 500.0)"] == SMALL.batch_rows
    assert any(k.startswith("payment_method: isin") for k in m["by_reason"])
    assert sorted(m["drifted_features"]) == ["monthly_charges", "payment_method"]


def test_distribution_check_catches_what_the_range_check_misses(lab: LabResult) -> None:
    m = measured(lab, "distribution_check_catches_small_factors")
    for factor in ("x2", "x3"):
        assert m[f"range_check_rows_failed_{factor}"] == 0
        assert m[f"median_check_refused_{factor}"] is True
        assert m[f"ks_p_value_{factor}"] < 1e-6


def test_hotfix_restores_predictions_and_accuracy(lab: LabResult) -> None:
    m = measured(lab, "hotfix_restores_predictions")
    # The factor is estimated from the data (not passed in): the batch and every hotfix day.
    assert m["unit_factor_estimated"] == m["unit_factor_planted"] == SMALL.incident_factor
    assert m["unit_factor_estimated_daily"] == [SMALL.incident_factor]
    assert m["flip_rate_after_fix"] == 0 and m["max_abs_delta_p"] < 1e-9
    assert m["accuracy_incident_ungated"] < m["accuracy_before"] - 0.3
    assert abs(m["accuracy_after_hotfix"] - m["accuracy_before"]) < SMALL.recovery_tolerance
    assert m["incident_days_refused"] == SMALL.hotfix_day - SMALL.incident_day


def test_going_back_to_the_pre_incident_version_reproduces_the_metric(lab: LabResult) -> None:
    m = measured(lab, "versioned_data_reproduces_metric")
    # Read back by a teammate's process, from the store: all four versions, md5 verified.
    assert m["teammate_found_version"] and m["teammate_md5_verified"]
    assert m["teammate_versions_found"] == 4
    assert m["roc_auc_checked_out"] == m["roc_auc_recorded"] > 0.7
    assert m["md5_found_v3-hotfix-cents-to-euros"] == m["md5_found_v1-before-incident"]
    assert m["md5_found_v2-incident"] != m["md5_found_v1-before-incident"]
    for name in ("v1-before-incident", "v2-incident", "v3-hotfix-cents-to-euros"):
        assert m[f"md5_found_{name}"] == m[f"md5_{name}"]


def test_summary_plot_and_reports_follow_the_contract(lab: LabResult, out_dir: Path) -> None:
    assert lab.passed, [c.id for c in lab.claims if not c.passed]
    assert finish(lab, out_dir) == 0
    summary = read_summary(out_dir / "summary.json")
    assert summary.lab == "data_quality" and summary.passed
    assert summary.question == topic("data_quality").question
    assert summary.mlflow["experiment"] == "lab-data_quality" and summary.mlflow["run_id"]
    assert [c.id for c in summary.claims] == [c.id for c in lab.claims]
    drawing = read_drawing(out_dir / "incident.png")
    flips, days = drawing["axes"]
    assert flips["xticklabels"] == ["x2", "x3", "x100"]
    (bars,) = flips["bars"]
    m = measured(lab, "signature_accepts_unit_change")
    assert bars["heights"] == pytest.approx([m["flip_rate_x2"], m["flip_rate_x3"],
                                             m["flip_rate_x100"]])  # fmt: skip
    served = next(line for line in days["lines"] if line["label"].startswith("gated"))
    assert served["y"][SMALL.incident_day : SMALL.hotfix_day] == [None, None]  # refused days
    html = (out_dir / "drift_incident.html").read_text(errors="ignore")
    assert "monthly_charges" in html and "payment_method" in html


def test_a_claim_that_must_not_hold_fails_the_lab(tmp_path: Path, capsys) -> None:
    # A 5 % unit change moves the median by less than the reference IQR: the median
    # expectation lets it through, and few decisions flip. The incident here is ×1000, which
    # the hotfix is not told: it must estimate it (a hard-coded ÷100 fails this). And the
    # versions are kept in the writing process's memory: the teammate's process finds none.
    result = run(
        replace(SMALL, unit_factors=(1.05, 1000.0), incident_factor=1000.0),
        tmp_path,
        store=MemoryStore,
    )
    m = measured(result, "distribution_check_catches_small_factors")
    assert m["median_check_refused_x1.05"] is False
    assert m["range_check_rows_failed_x1.05"] == 0
    assert not result.claim("distribution_check_catches_small_factors").passed
    assert measured(result, "signature_accepts_unit_change")["flip_rate_x1.05"] < 0.1
    assert result.claim("gate_loses_nothing").passed
    fix = measured(result, "hotfix_restores_predictions")
    assert fix["unit_factor_estimated"] == 1000.0 and fix["unit_factor_estimated_daily"] == [1000.0]
    assert fix["max_abs_delta_p"] < 1e-9 and result.claim("hotfix_restores_predictions").passed
    kept = measured(result, "versioned_data_reproduces_metric")
    assert kept["teammate_found_version"] is False and kept["teammate_versions_found"] == 0
    assert kept["roc_auc_checked_out"] is None and kept["md5_v1-before-incident"]
    assert not result.claim("versioned_data_reproduces_metric").passed
    assert finish(result, tmp_path) == 1
    out = capsys.readouterr().out
    assert "✗ distribution_check_catches_small_factors" in out
    assert "✗ versioned_data_reproduces_metric" in out


# Small enough for a counterfactual run: the claims asserted here do not need more rows.
TINY = replace(SMALL, train_rows=600, batch_rows=200, stream_days=5, rows_per_day=100, hotfix_day=3)


@pytest.mark.counterfactual
def test_a_hotfix_with_a_hard_coded_wrong_factor_fails(tmp_path: Path) -> None:
    result = run(TINY, tmp_path, hotfix=hotfix_assumes_thousandths)
    m = measured(result, "hotfix_restores_predictions")
    assert m["unit_factor_estimated"] == 1000.0 != m["unit_factor_planted"]
    # ÷1000 leaves charges 10× too low: the median expectation refuses every hotfix day.
    assert m["accuracy_after_hotfix"] is None or m["max_abs_delta_p"] > 0.01
    assert not result.claim("hotfix_restores_predictions").passed
    kept = measured(result, "versioned_data_reproduces_metric")
    assert kept["teammate_md5_verified"]  # the teammate reads the store fine …
    # … but the hotfixed version is not the pre-incident bytes.
    assert kept["md5_found_v3-hotfix-cents-to-euros"] != kept["md5_found_v1-before-incident"]
    assert not result.claim("versioned_data_reproduces_metric").passed


def test_a_gate_that_checks_types_only_lets_the_incident_through() -> None:
    train = make_churn_data(600, seed=1)
    expectations = BatchExpectations.from_reference(train)
    incident = unit_change(with_ids(make_churn_data(200, seed=2), first_id=0), 100.0, seed=1)
    assert gate(incident, expectations).bad_share == 1.0
    assert types_only_gate(incident, expectations).bad_share == 0.0
    dirty = plant_problems(with_ids(make_churn_data(200, seed=3), first_id=0), 0.25, seed=1)
    caught = set(types_only_gate(dirty.frame).quarantined.index)
    missed = {kind for row, kind in dirty.planted.items() if row not in caught}
    assert missed == {"out_of_range", "unknown_category", "duplicate_key", "lifetime_rule"}


def test_dropping_rows_before_the_gate_loses_them() -> None:
    # The counterfactual `naive-gate`'s cleaning step: dropna() before the gate.
    dirty = plant_problems(with_ids(make_churn_data(200, seed=3), first_id=0), 0.25, seed=1)
    assert loses_nothing(dirty.frame, gate(dirty.frame))["missing_rows"] == 0
    lost = loses_nothing(dirty.frame, naive_gate(dirty.frame))
    planted_missing = sum(kind == "missing" for kind in dirty.planted.values())
    assert lost["missing_rows"] == planted_missing > 0
    assert lost["valid_rows"] + lost["quarantined_rows"] == lost["input_rows"] - planted_missing


def test_the_hotfix_estimates_the_unit_and_leaves_clean_data_alone() -> None:
    train = make_churn_data(600, seed=1)
    medians = reference_medians(train)
    batch = with_ids(make_churn_data(200, seed=2), first_id=0)
    for factor in (10.0, 100.0, 1000.0):
        fixed, found = hotfix_units(unit_change(batch, factor, seed=1), medians)
        assert found["unit_factor"] == factor
        assert fixed["monthly_charges"].equals(batch["monthly_charges"])
    same, found = hotfix_units(batch, medians)
    assert found == {"unit_factor": 1.0, "renames": {}} and same.equals(batch)


def test_params_are_checked() -> None:
    with pytest.raises(ValueError, match="hotfix_day"):
        replace(SMALL, hotfix_day=1)
    with pytest.raises(ValueError, match="unit_factors"):
        replace(SMALL, unit_factors=(1.0,))


def test_a_batch_quarantined_whole_is_scored_as_nothing_not_a_crash() -> None:
    """A hotfix that leaves every row out of range (a wrong factor) gives the gate nothing to
    pass: no probabilities, and the hotfix claim fails on its numbers (it crashed the lab)."""
    from labs.common.model import TrainParams, train_model

    train = make_churn_data(300, seed=5)
    model = train_model(train, TrainParams(seed=5))
    assert probabilities(model, train.iloc[:0]).shape == (0,)
    assert probabilities(model, train.iloc[:3]).shape == (3,)
