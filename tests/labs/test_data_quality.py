"""Lab data_quality: every claim asserted from its numbers, on small, fast parameters."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pandas as pd
import pytest

from labs.common.catalogue import topic
from labs.common.plots import read_drawing
from labs.common.results import LabResult, finish, read_summary
from labs.data_quality.lab import run
from labs.data_quality.params import DataQualityParams

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
    assert m["flip_rate_after_fix"] == 0 and m["max_abs_delta_p"] < 1e-9
    assert m["accuracy_incident_ungated"] < m["accuracy_before"] - 0.3
    assert abs(m["accuracy_after_hotfix"] - m["accuracy_before"]) < SMALL.recovery_tolerance
    assert m["incident_days_refused"] == SMALL.hotfix_day - SMALL.incident_day


def test_going_back_to_the_pre_incident_version_reproduces_the_metric(lab: LabResult) -> None:
    m = measured(lab, "versioned_data_reproduces_metric")
    assert m["roc_auc_checked_out"] == m["roc_auc_recorded"] > 0.7
    assert m["md5_v3-hotfix-cents-to-euros"] == m["md5_v1-before-incident"]
    assert m["md5_v2-incident"] != m["md5_v1-before-incident"]


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
    # expectation lets it through, and few decisions flip.
    result = run(replace(SMALL, unit_factors=(1.05, 100.0)), tmp_path)
    m = measured(result, "distribution_check_catches_small_factors")
    assert m["median_check_refused_x1.05"] is False
    assert m["range_check_rows_failed_x1.05"] == 0
    assert not result.claim("distribution_check_catches_small_factors").passed
    assert measured(result, "signature_accepts_unit_change")["flip_rate_x1.05"] < 0.1
    assert result.claim("gate_loses_nothing").passed
    assert finish(result, tmp_path) == 1
    assert "✗ distribution_check_catches_small_factors" in capsys.readouterr().out


def test_params_are_checked() -> None:
    with pytest.raises(ValueError, match="hotfix_day"):
        replace(SMALL, hotfix_day=1)
    with pytest.raises(ValueError, match="unit_factors"):
        replace(SMALL, unit_factors=(1.0,))
