"""Lab cicd: the gate's decisions asserted from their numbers, the negative cases (degrading
changes fail with metric, value and threshold; an ungated version cannot reach production),
the workflow file against the vendored GitHub schema, and the `make ci` runner."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import yaml

from labs.cicd import counterfactuals as cf
from labs.cicd import workflow as wf
from labs.cicd.ci import STAGES, StageFailed, run_stages
from labs.cicd.gate import GateThresholds, NotStagedError, run_gate
from labs.cicd.lab import CicdParams, run
from labs.common.catalogue import topic
from labs.common.errors import Refusal
from labs.common.plots import read_drawing
from labs.common.results import LabResult, finish, read_summary

SMALL = CicdParams(train_rows=1500, holdout_rows=1000, new_data_rows=1500, noise_seeds=5)
CLAIMS = [
    "margin_from_seed_noise",
    "good_change_staged",
    "degrading_changes_fail",
    "leak_caught_by_time_split",
    "data_change_triggers_gate",
    "production_is_separate_audited_step",
]
DEGRADING = ("dropped_feature", "leaky_feature", "preprocessing_bug")


def measured(result: LabResult, claim: str) -> dict:
    return dict(result.claim(claim).measured)


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> LabResult:
    return run(SMALL, tmp_path_factory.mktemp("cicd"))


# --- the claims, from their numbers ------------------------------------------------------


def test_margin_keeps_false_promotions_of_no_op_changes_within_target(lab: LabResult) -> None:
    m = measured(lab, "margin_from_seed_noise")
    assert m["seeds"] == SMALL.noise_seeds and 0 < m["sigma"] < 0.02
    assert m["margin"] == pytest.approx(SMALL.noise_sigmas * m["sigma"])
    assert m["roc_auc_max"] - m["roc_auc_min"] > m["sigma"]  # the seeds really differ
    # Fresh pairs: few no-op changes promoted, below the count that would refute the target.
    assert m["noop_pairs"] == SMALL.noop_pairs and m["target"] == SMALL.max_false_promotion
    assert m["noop_promoted"] < m["promotions_that_would_reject"]
    assert m["p_value_rate_above_target"] > 0.05 and m["power_against_no_margin"] >= 0.9


def test_good_change_passes_and_is_staged_with_lineage(lab: LabResult) -> None:
    m = measured(lab, "good_change_staged")
    assert m["gain"] == pytest.approx(m["roc_auc"] - m["champion_roc_auc"])
    assert m["gain"] > m["margin"] > 0 and m["roc_auc"] >= SMALL.min_roc_auc
    assert m["checks_passed"] == m["checks"] == 4
    assert m["lineage_tags_recorded"] == 4 and len(m["git_commit"]) == 40
    assert len(m["data_md5"]) == 32 and m["version"] == "2"


def test_degrading_changes_fail_naming_metric_value_and_threshold(lab: LabResult) -> None:
    m = measured(lab, "degrading_changes_fail")
    assert m["gated_versions"] == ["better_feature", "champion"]  # nothing else got staged
    assert "roc_auc_floor" in m["dropped_feature.failed_checks"]
    assert "offline_matches_holdout" in m["leaky_feature.failed_checks"]
    assert "roc_auc_floor" in m["preprocessing_bug.failed_checks"]
    for name in DEGRADING:
        reason = m[f"{name}.reason"]
        assert reason.startswith("failed: ")
        value = m[f"{name}.roc_auc"]
        if "roc_auc_floor" in m[f"{name}.failed_checks"]:
            assert f"roc_auc = {value:.4f}, threshold ≥ {SMALL.min_roc_auc:.4f}" in reason


def test_leak_looks_best_offline_and_fails_the_time_split(lab: LabResult) -> None:
    m = measured(lab, "leak_caught_by_time_split")
    assert m["offline_roc_auc"] > m["best_honest_offline_roc_auc"] + 0.05
    assert m["gap"] == pytest.approx(m["offline_roc_auc"] - m["holdout_roc_auc"])
    assert m["gap"] > m["max_gap"] == SMALL.max_offline_gap
    # The preprocessing bug is invisible offline (its training code scales both sides) and
    # breaks served predictions.
    assert m["bug_offline_roc_auc"] > 0.7 and m["bug_holdout_roc_auc"] < 0.6


def test_data_only_change_triggers_the_same_gate(lab: LabResult) -> None:
    m = measured(lab, "data_change_triggers_gate")
    assert m["changed_files"] == ["dvc.lock"]  # what git saw in the scratch repository
    assert m["triggers_push"] and m["triggers_pull_request"] and not m["docs_change_triggers"]
    assert m["code_change_triggers"]
    assert m["new_data_md5"] != m["old_data_md5"] and m["data_md5_read"] == m["new_data_md5"]
    assert m["gate_ran"] and m["checks"] == [
        "roc_auc_floor",
        "accuracy_floor",
        "beats_champion",
        "offline_matches_holdout",
    ]
    assert m["roc_auc"] != m["champion_roc_auc"]  # a model really retrained on data v2
    assert m["passed_gate"] == (m["roc_auc"] >= m["needed_roc_auc"])


# --- counterfactuals: the broken parts turn the claims ✗, through the lab ------------------


@pytest.fixture(scope="module")
def broken(tmp_path_factory: pytest.TempPathFactory) -> LabResult:
    """One run with two broken parts: no promotion margin, and a code-only path filter."""
    return run(
        SMALL,
        tmp_path_factory.mktemp("cicd-broken"),
        margin_rule=cf.any_gain,
        trigger=cf.code_only_trigger,
    )


@pytest.mark.counterfactual
def test_without_margin_no_op_changes_are_promoted_and_the_claim_fails(broken) -> None:
    m = measured(broken, "margin_from_seed_noise")
    assert not broken.claim("margin_from_seed_noise").passed
    assert m["margin"] < 1e-6 and m["noop_promoted"] >= m["promotions_that_would_reject"]
    assert m["false_promotion_rate"] > 0.25 and m["p_value_rate_above_target"] <= 0.05


@pytest.mark.counterfactual
def test_a_workflow_that_ignores_data_never_regates_and_the_claim_fails(broken) -> None:
    m = measured(broken, "data_change_triggers_gate")
    assert not broken.claim("data_change_triggers_gate").passed
    assert m["changed_files"] == ["dvc.lock"] and m["code_change_triggers"]
    assert not m["triggers_push"] and not m["triggers_pull_request"]
    assert not m["gate_ran"] and m["data_md5_read"] is None


def test_an_ungated_version_cannot_reach_production(lab: LabResult) -> None:
    m = measured(lab, "production_is_separate_audited_step")
    assert m["refusal"].startswith(f"refused: {SMALL.model_name} v{m['by_hand_version']}")
    assert m["production_after_refusal"] == m["production_before"] == "1"
    assert m["promoted_version"] == measured(lab, "good_change_staged")["version"]
    assert m["audit_user"] and m["audit_at"] and m["audit_reason"]


def test_summary_follows_the_contract(lab: LabResult, tmp_path: Path, capsys) -> None:
    assert lab.passed, [c.id for c in lab.claims if not c.passed]
    assert finish(lab, tmp_path) == 0
    summary = read_summary(tmp_path / "summary.json")
    assert summary.lab == "cicd" and summary.passed
    assert summary.question == topic("cicd").question
    assert [c.id for c in summary.claims] == CLAIMS
    assert summary.mlflow["experiment"] == "lab-cicd" and summary.mlflow["run_id"]
    assert "✓ degrading_changes_fail" in capsys.readouterr().out


def test_the_plot_shows_each_candidates_scores(lab: LabResult) -> None:
    png = next(Path(a) for a in lab.artifacts if a.endswith(".png"))
    axis = read_drawing(png)["axes"][0]
    names = [t for t in axis["xticklabels"]]
    assert names == ["champion", "better_feature", *DEGRADING, "new_data"]
    offline, holdout = (b["heights"] for b in axis["bars"])
    leak = measured(lab, "leak_caught_by_time_split")
    i = names.index("leaky_feature")
    assert offline[i] == pytest.approx(leak["offline_roc_auc"])
    assert holdout[i] == pytest.approx(leak["holdout_roc_auc"])
    floor = next(line for line in axis["lines"] if line["label"] == "floor")
    assert floor["y"][0] == SMALL.min_roc_auc


# --- the gate on its own ----------------------------------------------------------------


def test_gate_names_metric_value_and_threshold() -> None:
    thresholds = GateThresholds(0.75, 0.75, 0.05, margin=0.01)
    champion = {"roc_auc": 0.80}
    worse = {"roc_auc": 0.805, "accuracy": 0.78, "offline_holdout_gap": 0.01}
    decision = run_gate("worse", worse, champion, thresholds)
    assert not decision.passed and [c.name for c in decision.failed] == ["beats_champion"]
    check = decision.failed[0]
    assert check.threshold == pytest.approx(0.81)
    assert "roc_auc = 0.8050, threshold ≥ 0.8100" in check.message
    assert "minimum absolute change check failed" in check.mlflow_message  # MLflow's words
    better = {**worse, "roc_auc": 0.82}
    assert run_gate("better", better, champion, thresholds).passed
    # No champion yet: the floors and the gap only.
    assert [c.name for c in run_gate("first", worse, None, thresholds).checks] == [
        "roc_auc_floor",
        "accuracy_floor",
        "offline_matches_holdout",
    ]


def test_refusal_is_typed() -> None:
    assert issubclass(NotStagedError, Refusal)
    with pytest.raises(ValueError, match="margin"):
        GateThresholds(0.7, 0.7, 0.05, margin=0.0)
    with pytest.raises(ValueError, match="noise_sigmas must be >= 2"):
        CicdParams(noise_sigmas=1.5)


# --- the workflow file ------------------------------------------------------------------


def test_workflow_passes_the_vendored_github_schema() -> None:
    ok, out = wf.schema_check()
    assert ok, out


def test_a_broken_workflow_fails_the_schema(tmp_path: Path) -> None:
    data = wf.load_workflow()
    control = tmp_path / "same.yml"
    control.write_text(yaml.safe_dump(data, sort_keys=False))
    assert wf.schema_check(control)[0]  # re-dumped unchanged: still valid
    del data["jobs"]["gate"]["runs-on"]
    data["jobs"]["production"]["environment"] = ["production"]  # must be a string or mapping
    broken = tmp_path / "ml.yml"
    broken.write_text(yaml.safe_dump(data))
    ok, out = wf.schema_check(broken)
    assert not ok and "ml.yml" in out


def test_every_run_step_is_an_existing_make_target() -> None:
    workflow = wf.load_workflow()
    targets = [s.target for s in wf.steps(workflow) if s.run is not None]
    assert targets == [
        "ci-lint",
        "ci-unit",
        "ci-data",
        "ci-repro",
        "ci-gate",
        "ci-register",
        "ci-promote",
    ]
    assert wf.step_problems(workflow) == []
    assert {f"ci-{s}" for s in STAGES} <= wf.makefile_targets()
    # Negative: a step that is not a make call, and a target the Makefile lacks, are named.
    workflow["jobs"]["lint"]["steps"].append({"name": "raw", "run": "pytest -q"})
    workflow["jobs"]["lint"]["steps"].append({"name": "typo", "run": "make ci-lnit"})
    problems = wf.step_problems(workflow)
    assert len(problems) == 2 and "not make <target>" in problems[0]
    assert "no Makefile target ci-lnit" in problems[1]


def test_workflow_jobs_triggers_and_approval() -> None:
    workflow = wf.load_workflow()
    jobs = workflow["jobs"]
    assert list(jobs) == ["lint", "unit", "data", "repro", "gate", "register", "production"]
    assert jobs["production"]["environment"] == "production"
    assert jobs["production"]["needs"] == "register" and jobs["register"]["needs"] == "gate"
    for changed in (["dvc.lock"], ["params.yaml"], ["data/raw/churn.csv.dvc"], ["labs/x.py"]):
        assert wf.triggered_by(workflow, changed) == {"push": True, "pull_request": True}
    for changed in (["README.md"], ["docs/a/b.md"], ["data/raw/churn.csv"]):
        assert wf.triggered_by(workflow, changed) == {"push": False, "pull_request": False}
    assert wf.index_words() == []


def test_glob_semantics() -> None:
    assert wf.matches(["labs/**"], "labs/common/model.py")
    assert wf.matches(["data/**.dvc"], "data/raw/churn.csv.dvc")
    assert not wf.matches(["*.md"], "docs/readme.md")
    assert not wf.matches(["labs/**", "!labs/**.md"], "labs/cicd/README.md")


# --- make ci: the runner ----------------------------------------------------------------


def test_ci_runner_stops_at_the_first_failure_naming_stage_and_reason() -> None:
    ran: list[str] = []

    def ok(name: str):
        return lambda: ran.append(name) or f"{name} fine"

    def broken() -> str:
        ran.append("gate")
        raise StageFailed("roc_auc = 0.6000, threshold ≥ 0.7500")

    stages = {"lint": ok("lint"), "gate": broken, "register": ok("register")}
    lines: list[str] = []
    code = run_stages(["lint", "gate", "register"], stages, out=lines.append)
    assert code == 1 and ran == ["lint", "gate"]
    assert "[1/3] lint ok" in lines[1]
    assert lines[-2] == "ci: stopped at stage 'gate': roc_auc = 0.6000, threshold ≥ 0.7500"
    assert lines[-1] == "ci: not run: register"
    lines.clear()
    assert run_stages(["lint"], stages, out=lines.append) == 0
    assert lines[-1].startswith("ci: 1 stages passed")

    def refused() -> str:
        raise NotStagedError("refused: v3 is not the gated staging version")

    assert run_stages(["promote"], {"promote": refused}, out=lines.append) == 2


def test_makefile_has_ci_target_running_all_stages() -> None:
    text = (wf.code_root() / "Makefile").read_text()
    assert "ci" in wf.makefile_targets()
    assert "python -m labs.cicd.ci all" in text
    assert shutil.which("make") is not None
