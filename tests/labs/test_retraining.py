"""Lab retraining: four months through the retraining steps, each claim from its numbers; and
the counterfactuals (a broken step of the same wiring) under which the claims must turn ✗."""

from __future__ import annotations

import csv
import uuid
from pathlib import Path

import mlflow
import pytest

from labs.common.catalogue import topic
from labs.common.plots import read_drawing
from labs.common.registry import RegistryError, read_audit_log
from labs.common.results import Summary, finish, read_summary
from labs.retraining.counterfactuals import (
    decide_without_quality,
    promote_without_gate,
    split_with_overlap,
)
from labs.retraining.lab import RetrainingLabParams, run
from labs.retraining.report import CHAMPION_SERIES, PROMOTED_SERIES, REJECTED_SERIES
from labs.retraining.steps import Steps

MODEL = "test-retraining-lab"


@pytest.fixture(scope="module")
def lab_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[int, Summary]:
    out = tmp_path_factory.mktemp("rl")
    code = finish(run(RetrainingLabParams(model_name=MODEL), out), out)
    return code, read_summary(out / "summary.json")


@pytest.fixture(scope="module")
def lab(lab_run: tuple[int, Summary]) -> Summary:
    return lab_run[1]


def m(lab: Summary, claim: str) -> dict:
    return dict(lab.claim(claim).measured)


def artifact(lab: Summary, name: str) -> Path:
    return next(Path(a) for a in lab.artifacts if Path(a).name == name)


def test_normal_month_trains_nothing(lab: Summary) -> None:
    normal = m(lab, "normal_month_no_retraining")
    assert normal["champion_auc_on_batch"] >= normal["quality_threshold"]
    assert normal["reasons"] == ["no trigger: no drift, quality holds, few new rows"]


def test_concept_drift_triggers_and_a_better_challenger_is_promoted(lab: Summary) -> None:
    trigger = m(lab, "concept_drift_triggers_retraining")
    assert trigger["champion_auc_on_batch"] < 0.5 < trigger["quality_threshold"]
    promo = m(lab, "better_challenger_promoted")
    assert promo["challenger_score"] - promo["champion_score"] > 0.3
    assert promo["challenger_score"] >= promo["floor"]
    assert promo["holdout_rows"] == 1200 and promo["holdout_rows_seen_in_training"] == 0
    client = mlflow.MlflowClient()
    aliases = client.get_registered_model(MODEL).aliases
    assert str(aliases["champion"]) == "2" and str(aliases["previous"]) == "1"


def test_a_worse_challenger_is_kept_out(lab: Summary) -> None:
    kept = m(lab, "worse_challenger_kept")
    assert kept["challenger_score"] < kept["champion_score"] and kept["action"] == "kept"
    assert m(lab, "every_move_audited")["champion_moves"] == 2
    moves = read_audit_log(artifact(lab, "audit.jsonl"))
    champion = [(x.action, x.from_version, x.to_version) for x in moves if x.alias == "champion"]
    assert champion == [("promote", None, "1"), ("promote", "1", "2")]
    assert len(moves) == m(lab, "every_move_audited")["audit_lines"]


def test_contract_summary_and_exit_code(lab_run: tuple[int, Summary]) -> None:
    code, lab = lab_run
    assert code == 0 and lab.passed, [c.id for c in lab.claims if not c.passed]
    assert lab.lab == "retraining" and lab.question == topic("retraining").question
    assert lab.mlflow["experiment"] == "lab-retraining"
    run_record = mlflow.get_run(lab.mlflow["run_id"])
    assert run_record.data.metrics["claim.better_challenger_promoted.passed"] == 1.0
    assert sorted(Path(a).name for a in lab.artifacts) == [
        "audit.jsonl",
        "champion_by_month.png",
        "months.csv",
    ]


def test_the_months_table_holds_each_decision(lab: Summary) -> None:
    with artifact(lab, "months.csv").open() as handle:
        rows = list(csv.DictReader(handle))
    assert [(r["month"], r["action"], r["champion_after"]) for r in rows] == [
        ("1", "promoted", "1"),
        ("2", "skipped", "1"),
        ("3", "promoted", "2"),
        ("4", "kept", "2"),
    ]
    promo = m(lab, "better_challenger_promoted")
    assert float(rows[2]["challenger_score"]) == pytest.approx(promo["challenger_score"])


def test_the_plot_draws_scores_on_zero_to_one_with_each_decision(lab: Summary) -> None:
    (ax,) = read_drawing(artifact(lab, "champion_by_month.png"))["axes"]
    assert ax["ylim"] == [0.0, 1.0] and ax["ylabel"] == "ROC-AUC"
    lines = {line["label"]: line for line in ax["lines"]}
    assert lines[CHAMPION_SERIES]["x"] == [1.0, 2.0, 3.0, 4.0]
    normal = m(lab, "normal_month_no_retraining")["champion_auc_on_batch"]
    drift = m(lab, "concept_drift_triggers_retraining")["champion_auc_on_batch"]
    assert lines[CHAMPION_SERIES]["y"][0] is None  # no champion in month 1
    assert lines[CHAMPION_SERIES]["y"][1:3] == pytest.approx([normal, drift])
    first = m(lab, "first_champion_promoted")["challenger_score"]
    promoted = m(lab, "better_challenger_promoted")["challenger_score"]
    rejected = m(lab, "worse_challenger_kept")["challenger_score"]
    assert lines[PROMOTED_SERIES]["y"] == pytest.approx([first, None, promoted, None])
    assert lines[REJECTED_SERIES]["y"] == pytest.approx([None, None, None, rejected])
    threshold = m(lab, "normal_month_no_retraining")["quality_threshold"]
    assert lines[f"retrain trigger: ROC-AUC < {threshold:g}"]["y"] == [threshold, threshold]
    assert [t.splitlines()[-2:] for t in ax["xticklabels"]] == [
        ["PROMOTE", "champion v1"],
        ["no trigger", "champion v1"],
        ["PROMOTE", "champion v2"],
        ["KEEP (challenger worse)", "champion v2"],
    ]


def test_a_stricter_floor_keeps_even_the_better_challenger_out(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, sandbox_root: Path
) -> None:
    # The must-not-hold case: with a floor no challenger reaches, nothing is ever promoted,
    # so the promotion claims fail and the lab exits 1.
    params = sandbox_root / "params.yaml"
    params.write_text(params.read_text().replace("absolute_floor: 0.7", "absolute_floor: 0.95"))
    name = f"test-retraining-floor-{uuid.uuid4().hex[:8]}"
    code = finish(run(RetrainingLabParams(model_name=name), tmp_path), tmp_path)
    summary = read_summary(tmp_path / "summary.json")
    assert code == 1 and not summary.passed
    first = summary.claim("first_champion_promoted")
    assert not first.passed and first.measured["floor"] == 0.95
    assert first.measured["challenger_score"] < 0.95
    assert not summary.claim("better_challenger_promoted").passed
    assert summary.claim("every_move_audited").measured["champion_moves"] == 0
    assert "champion" not in mlflow.MlflowClient().get_registered_model(name).aliases


def test_bad_params_are_refused() -> None:
    with pytest.raises(ValueError, match="drift_month"):
        RetrainingLabParams(drift_month=2)


def test_the_lab_never_deletes_a_model_it_does_not_own(tmp_path: Path) -> None:
    from labs.common.tracking import configure_tracking

    configure_tracking()
    name = f"someone-elses-model-{uuid.uuid4().hex[:8]}"  # the session store is shared
    client = mlflow.MlflowClient()
    client.create_registered_model(name, tags={"team": "fraud"}, description="theirs")
    with pytest.raises(RegistryError, match="was not created by this lab"):
        run(RetrainingLabParams(model_name=name), tmp_path)
    kept = client.get_registered_model(name)
    assert (kept.tags, kept.description) == ({"team": "fraud"}, "theirs")
    assert client.search_model_versions(f"name='{name}'") == []
    assert not (tmp_path / "audit.jsonl").exists()


# --- counterfactuals: one broken step, the same wiring, the claim turns ✗ ---------------------


def broken_run(tmp_path: Path, **steps) -> Summary:
    name = f"test-retraining-cf-{uuid.uuid4().hex[:8]}"
    out = tmp_path / name
    finish(run(RetrainingLabParams(model_name=name), out, steps=Steps(**steps)), out)
    return read_summary(out / "summary.json")


def test_without_a_promotion_gate_the_worse_challenger_is_promoted(tmp_path: Path) -> None:
    lab = broken_run(tmp_path, promote_or_keep=promote_without_gate)
    claim = lab.claim("worse_challenger_kept")
    kept = dict(claim.measured)
    assert not claim.passed and kept["action"] == "promoted"
    # it was worse than the champion on the same holdout (and below the floor): shipped anyway
    assert kept["challenger_score"] < min(kept["champion_score"], kept["floor"])
    assert m(lab, "every_move_audited")["champion_moves"] == 3


def test_a_trigger_blind_to_quality_misses_concept_drift(tmp_path: Path) -> None:
    lab = broken_run(tmp_path, decide=decide_without_quality)
    claim = lab.claim("concept_drift_triggers_retraining")
    assert not claim.passed
    # the champion's quality did collapse — the trigger just did not look at it
    assert claim.measured["champion_auc_on_batch"] < claim.measured["quality_threshold"]
    assert not lab.claim("better_challenger_promoted").passed


def test_a_holdout_the_challenger_trained_on_is_caught(tmp_path: Path) -> None:
    lab = broken_run(tmp_path, split_batch=split_with_overlap)
    claim = lab.claim("better_challenger_promoted")
    promo = dict(claim.measured)
    assert not claim.passed
    assert promo["holdout_rows_seen_in_training"] == promo["holdout_rows"] == 1200
