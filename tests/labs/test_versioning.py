"""Lab versioning: every claim asserted from its numbers; the user's checkout is never touched.

The lab runs once for the module (DVC repros dominate). Its registry part writes to this test
session's MLflow store (tests/conftest.py), never the user's. Claims are read back from the
validated ``summary.json`` (``read_summary``); the evidence the lab measured is kept too, to
show each claim fails when its numbers say so.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import subprocess
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import mlflow
import pytest
import yaml

from labs.common.data import make_churn_data
from labs.common.model import split_xy
from labs.common.plots import read_drawing
from labs.common.registry import (
    CHAMPION,
    LINEAGE_TAGS,
    MODEL_NAME,
    NoPreviousVersionError,
    RegistryError,
    alias_version,
    read_audit_log,
    rollback,
)
from labs.common.results import LabResult, Summary, finish, read_summary, stamp
from labs.common.tracking import configure_tracking
from labs.versioning import claims as claims_module
from labs.versioning import lab as lab_module
from labs.versioning.claims import Evidence
from labs.versioning.lab import EXPERIMENT, QUESTION, VersioningParams, run
from labs.versioning.report import PLOT_TITLES
from labs.versioning.scratch import ScratchError, Workspace, scratch_workspace
from labs.versioning.versions import TRAIN_DATA, set_generate_params

pytestmark = pytest.mark.slow

# Small and fast: experiments that move only the decision threshold re-run only `evaluate`.
SMALL = VersioningParams(
    v1_rows=1200,
    v1_seed=3,
    v2_rows=2400,
    v2_seed=4,
    experiments={
        "threshold-low": ["evaluate.threshold=0.3"],
        "threshold-high": ["evaluate.threshold=0.7"],
    },
    registered_model="churn-model-versioning-test",
)


def measured(lab: dict[str, Any], claim: str) -> dict[str, Any]:
    """A claim's numbers as written to (and validated back from) ``summary.json``."""
    return dict(lab["summary"].claim(claim).measured)


def snapshot(repo: Path) -> dict[str, Any]:
    """What the lab must leave exactly as it was in the checkout it clones."""

    def git(*args: str) -> str:
        return subprocess.run(
            ["git", *args], cwd=repo, capture_output=True, text=True, check=True
        ).stdout

    outs = yaml.safe_load((repo / "dvc.lock").read_text())["stages"]
    paths = [o["path"] for stage in outs.values() for o in stage.get("outs", [])]
    cache = repo / ".dvc" / "cache"
    return {
        "status": git("status", "--porcelain", "--untracked-files=all"),
        "exp_refs": git("for-each-ref", "refs/exps"),
        "dvc.lock": (repo / "dvc.lock").read_bytes(),
        "params.yaml": (repo / "params.yaml").read_bytes(),
        "outputs": {
            p: hashlib.md5((repo / p).read_bytes()).hexdigest() if (repo / p).exists() else None
            for p in paths
        },
        "cache_files": sum(1 for f in cache.rglob("*") if f.is_file()) if cache.exists() else 0,
    }


def scratch_roots(lines: list[str]) -> list[Path]:
    """The scratch directories a run announced (other sessions may run the lab meanwhile, so
    a glob of the temp directory would not say whose a directory is)."""
    found = (re.search(r": (\S+) \(removed at the end\)", line) for line in lines)
    return [Path(m.group(1)) for m in found if m]


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory, repo_root: Path) -> dict[str, Any]:
    # "The user's checkout": a clone of this repo, so that nobody editing the real one while
    # the tests run can change it. Like a real one it is not clean: an uncommitted edit and an
    # untracked file, which the lab must neither pick up nor touch.
    user = tmp_path_factory.mktemp("user") / "repo"
    subprocess.run(["git", "clone", "--quiet", str(repo_root), str(user)], check=True)
    with (user / "params.yaml").open("a") as params:
        params.write("# a local, uncommitted edit\n")
    (user / "notes.txt").write_text("untracked\n")
    out_dir = tmp_path_factory.mktemp("versioning")
    before, lines = snapshot(user), []
    real_refs = snapshot(repo_root)["exp_refs"]
    evidence: list[Evidence] = []

    def recording(e: Evidence) -> list:
        evidence.append(e)
        return claims_module.make_claims(e)

    started = time.perf_counter()
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(lab_module, "make_claims", recording)
        result = run(SMALL, out_dir, echo=lines.append, source=user)
    stamp(result, params=SMALL, started=started)
    exit_code = finish(result, out_dir)
    return {
        "result": result,
        "summary": read_summary(out_dir / "summary.json"),
        "evidence": evidence[0],
        "exit_code": exit_code,
        "out_dir": out_dir,
        "before": before,
        "after": snapshot(user),
        "real_exp_refs": (real_refs, snapshot(repo_root)["exp_refs"]),
        "scratch_roots": scratch_roots(lines),
    }


@pytest.fixture(scope="module")
def client() -> mlflow.MlflowClient:
    configure_tracking()
    return mlflow.MlflowClient()


def test_the_users_checkout_is_untouched_and_the_scratch_is_removed(lab) -> None:
    before, after = lab["before"], lab["after"]
    assert after["dvc.lock"] == before["dvc.lock"]
    assert after["params.yaml"] == before["params.yaml"]
    assert after["status"] == before["status"]
    assert after["outputs"] == before["outputs"]
    assert after["cache_files"] == before["cache_files"]
    assert after["exp_refs"] == before["exp_refs"] == ""
    assert " M params.yaml" in after["status"] and "?? notes.txt" in after["status"]
    assert lab["real_exp_refs"] == ("", "")  # and the real repo got no experiment refs either
    (root,) = lab["scratch_roots"]
    assert root.name.startswith("labs-versioning-") and not root.exists()


def test_new_data_is_a_new_version_with_other_metrics(lab) -> None:
    m = measured(lab, "data_versions_distinct")
    assert m["data_md5_v1"] != m["data_md5_v2"]
    assert (m["rows_v1"], m["rows_v2"]) == (SMALL.v1_rows, SMALL.v2_rows)
    assert m["roc_auc_v1"] != m["roc_auc_v2"]


def test_git_checkout_alone_is_not_enough_dvc_checkout_restores_v1_exactly(lab) -> None:
    m = measured(lab, "data_restored_identical")
    assert m["files"] >= 5  # raw, train, holdout, model, metrics (+ plots)
    assert m["identical_after_git_checkout_only"] == 0
    assert m["identical_after_dvc_checkout"] == m["files"]
    assert m["data_md5_restored"] == m["data_md5_v1"]
    assert m["data_md5_v1"] == measured(lab, "data_versions_distinct")["data_md5_v1"]


def test_a_teammate_reproduces_v1s_metric_exactly(lab) -> None:
    m = measured(lab, "metric_reproduced_exactly")
    assert m["roc_auc_reproduced"] == m["roc_auc_v1"]  # exactly, not approximately
    assert m["roc_auc_reproduced"] != m["roc_auc_v2"]
    assert m["metrics_identical"] and m["model_identical"] and m["dvc_lock_unchanged"]


def test_push_then_pull_into_an_empty_cache_restores_the_bytes(lab) -> None:
    m = measured(lab, "remote_roundtrip_identical")
    assert m["cache_files_before"] == 0 and m["identical_before"] == 0
    assert m["identical_after"] == m["files"] == m["cache_files_after"]
    assert m["remote_files"] >= m["files"]


def test_experiments_are_tracked_without_commits(lab) -> None:
    m = measured(lab, "experiments_tracked")
    assert m["settings_applied"] == m["settings"] == 2
    assert m["exp_refs"] == 2 and m["branch_commits_unchanged"]
    # A threshold moves decisions, not the ranking: accuracy changes, ROC-AUC does not.
    assert m["roc_auc_threshold-low"] == m["roc_auc_threshold-high"] == m["roc_auc_baseline"]
    assert m["accuracy_threshold-low"] != m["accuracy_baseline"]
    assert m["accuracy_threshold-high"] != m["accuracy_baseline"]
    shown = json.loads((lab["out_dir"] / "experiments.json").read_text())
    names = {e["name"] for row in shown for e in row.get("experiments") or []}
    assert names == {"threshold-low", "threshold-high"}


def test_each_registered_version_leads_back_to_its_data_and_code(lab, client) -> None:
    m = measured(lab, "lineage_complete")
    assert m["versions_checked"] == 2 and m["tags_missing"] == 0
    assert m["data_matches"] == m["model_matches"] == m["lock_pins_data"] == 2
    # The tags themselves, read back from the registry.
    rollback_m = measured(lab, "rollback_restores_predictions")
    v1 = client.get_model_version(SMALL.registered_model, str(rollback_m["champion_before"]))
    assert all(v1.tags.get(tag) for tag in LINEAGE_TAGS)
    assert len(v1.tags["git_commit"]) == 40
    assert v1.tags["data_md5"] == measured(lab, "data_versions_distinct")["data_md5_v1"]
    assert v1.tags["data_version"] == "v1"


def test_rollback_restores_the_old_predictions_exactly(lab, client) -> None:
    m = measured(lab, "rollback_restores_predictions")
    assert m["max_prediction_diff_promoted"] > 0  # v2 really serves other predictions
    assert m["max_prediction_diff_rolled_back"] == 0.0
    assert m["champion_after_rollback"] == m["champion_before"] != m["champion_promoted"]
    assert alias_version(client, SMALL.registered_model, CHAMPION) == str(m["champion_before"])


def test_rollback_with_no_previous_version_leaves_the_alias(lab, client, tmp_path) -> None:
    # The lab's champion (v1) was the first one ever promoted in this fresh store.
    name = SMALL.registered_model
    champion = alias_version(client, name, CHAMPION)
    log = tmp_path / "audit.jsonl"
    with pytest.raises(NoPreviousVersionError, match=f"stays on v{champion}"):
        rollback(client, name, reason="one too many", audit_log=log)
    assert alias_version(client, name, CHAMPION) == champion
    assert not log.exists()


def test_the_lab_itself_refuses_a_rollback_past_the_first_champion(lab) -> None:
    m = measured(lab, "rollback_refused_without_previous")
    assert m["refused"] and m["audit_lines_added"] == 0
    assert m["champion_after_refusal"] == "1"
    assert "v1 has no previous champion" in m["error"]


def test_every_alias_move_is_in_the_audit_log(lab) -> None:
    m = measured(lab, "alias_moves_audited")
    assert m["moves_logged"] == 5
    moves = read_audit_log(lab["out_dir"] / "alias_audit.jsonl")
    # The lab rebuilds its registered model each run: the same params, the same numbers.
    v1, v2 = "1", "2"
    assert [(mv.alias, mv.action, mv.from_version, mv.to_version) for mv in moves] == [
        ("champion", "promote", None, v1),
        ("challenger", "set", None, v2),
        ("champion", "promote", v1, v2),
        ("challenger", "retire", v2, None),
        ("champion", "rollback", v2, v1),
    ]


def test_concurrent_writers_get_distinct_versions_and_overwrite_nothing(lab, client) -> None:
    m = measured(lab, "concurrent_registrations_safe")
    assert m["processes"] == SMALL.writers + 1  # one more holds the first writer's bytes
    assert m["new_versions"] == SMALL.writers
    # After v1 and v2: 3 and 4, in whichever order the writers took the lock; the twin (last)
    # got the first writer's version.
    assert sorted(set(m["versions"])) == [3, 4] and m["versions"][-1] == m["versions"][0]
    assert m["twin_got_first_version"] and m["versions_created_for_the_twin_pair"] == 1
    assert m["each_serves_its_model"] == SMALL.writers + 1
    # They really registered at the same time: every window overlaps every other.
    assert m["overlapped"] and m["overlap_ms"] > 0
    assert m["same_bytes_same_version"]  # find-or-register: the same bytes, no new version
    # Each version holds exactly its writer's bytes: the sha256 tag is the writer's file's.
    writers = lab["evidence"].concurrent["writers"]
    for w in writers:
        tags = client.get_model_version(SMALL.registered_model, w["version"]).tags
        assert tags["model_sha256"] == w["model_sha256"]
    # Each distinct model created once; of the first writer and its twin, only one created.
    assert sum(w["created"] for w in writers) == SMALL.writers
    assert writers[0]["created"] != writers[-1]["created"]
    assert len({w["model_sha256"] for w in writers}) == SMALL.writers
    all_versions = client.search_model_versions(f"name='{SMALL.registered_model}'")
    assert sorted(int(v.version) for v in all_versions) == [1, 2, 3, 4]


@pytest.mark.counterfactual
def test_registering_without_the_lock_duplicates_the_twins_version(lab, client, tmp_path) -> None:
    # The counterfactual `registry-without-guards`, through the real path: writer processes
    # released at once, each searching and registering without the lock (no compare-and-set).
    from labs.common.registry import reset_lab_model
    from labs.versioning.counterfactuals import register_without_lock
    from labs.versioning.writers import register_concurrently, writer_env, writer_models

    name = "churn-model-versioning-test-nolock"
    reset_lab_model(client, name, owner=EXPERIMENT, setting="test")
    e: Evidence = lab["evidence"]
    train = tmp_path / "train.csv"
    make_churn_data(600, seed=SMALL.v2_seed).to_csv(train, index=False)
    x, _ = split_xy(make_churn_data(50, seed=5))
    files = writer_models(train, tmp_path, 2, seed=SMALL.v2_seed)
    c = register_concurrently(
        client, name, files, x, tmp_path / "gate", writer_env({}), 120,
        register_with=register_without_lock,
    )  # fmt: skip
    assert c["overlapped"]  # the race really happened …
    assert c["pair_created"] == 2 and c["versions"][-1] != c["versions"][0]  # … and was lost
    assert c["count_after"] - c["count_before"] == 3  # two models, three versions
    claim = claims_module.concurrent_registrations_safe(replace(e, concurrent=c))
    assert not claim.passed
    assert claim.measured["versions_created_for_the_twin_pair"] == 2
    assert claim.measured["new_versions"] == 3


def test_summary_validates_and_the_mlflow_run_holds_the_claims(lab, client) -> None:
    result: LabResult = lab["result"]
    summary: Summary = lab["summary"]
    assert lab["exit_code"] == 0, [c.id for c in result.claims if not c.passed]
    assert summary.lab == "versioning" and summary.question == QUESTION
    assert summary.passed and all(c.passed for c in summary.claims)
    assert [c.id for c in summary.claims] == [
        "data_versions_distinct",
        "data_restored_identical",
        "metric_reproduced_exactly",
        "remote_roundtrip_identical",
        "experiments_tracked",
        "lineage_complete",
        "rollback_restores_predictions",
        "rollback_refused_without_previous",
        "alias_moves_audited",
        "concurrent_registrations_safe",
    ]
    assert summary.params["registered_model"] == SMALL.registered_model
    assert summary.duration_s is not None and summary.duration_s > 0
    assert {Path(a).name for a in summary.artifacts} == {
        "versions.md",
        "versions.png",
        "experiments.json",
        "alias_audit.jsonl",
    }
    run = client.get_run(summary.mlflow["run_id"])
    assert client.get_experiment(run.info.experiment_id).name == EXPERIMENT == "lab-versioning"
    assert run.data.params["registered_model"] == SMALL.registered_model
    for claim in summary.claims:  # every verdict and number is in MLflow too
        assert run.data.metrics[f"claim.{claim.id}.passed"] == 1.0
    m = measured(lab, "rollback_restores_predictions")
    assert run.data.metrics["rollback_restores_predictions.max_prediction_diff_promoted"] == (
        pytest.approx(m["max_prediction_diff_promoted"])
    )


def test_the_plot_draws_the_measured_metrics_from_zero(lab) -> None:
    png = next(Path(a) for a in lab["summary"].artifacts if a.endswith(".png"))
    drawing = read_drawing(png)
    left, right = drawing["axes"]
    assert (left["title"], right["title"]) == PLOT_TITLES
    # A score on 0–1, never an axis that starts just below the smallest bar.
    assert left["ylim"] == [0.0, 1.0] and left["ylabel"] == "holdout roc_auc"
    e = lab["evidence"]
    expected = {
        "data v1": measured(lab, "data_versions_distinct")["roc_auc_v1"],
        "data v2": measured(lab, "data_versions_distinct")["roc_auc_v2"],
        "v1 reproduced": measured(lab, "metric_reproduced_exactly")["roc_auc_reproduced"],
        **{
            f"exp {n}": measured(lab, "experiments_tracked")[f"roc_auc_{n}"]
            for n in SMALL.experiments
        },
    }
    (bars,) = left["bars"]
    assert dict(zip(left["xticklabels"], bars["heights"], strict=True)) == expected
    # The champion alias over time: v1, v2, back to v1 — on an axis from 0.
    (line,) = right["lines"]
    assert line["y"] == [float(e.numbers["v1"]), float(e.numbers["v2"]), float(e.numbers["v1"])]
    assert right["xticklabels"] == ["promote", "promote", "rollback"]
    assert right["ylim"][0] == 0.0 and right["ylim"][1] > max(line["y"])


def test_the_versions_report_holds_each_versions_hashes_and_metric(lab) -> None:
    e = lab["evidence"]
    table = (lab["out_dir"] / "versions.md").read_text()
    rows = {
        cells[0]: cells
        for line in table.splitlines()
        if line.startswith("| ") and (cells := [c.strip() for c in line.strip("|").split("|")])
    }
    for dv in (e.v1, e.v2):
        version, _, commit, data, model, registry, alias, metric = rows[f"data {dv.label}"]
        assert (commit, data, model) == (dv.commit[:8], dv.md5[TRAIN_DATA][:8], dv.model_sha256[:8])
        assert registry == f"v{e.numbers[dv.label]}" and metric == f"{dv.metrics['roc_auc']:.6f}"
    assert rows["data v1"][6] == "champion"  # after the rollback
    assert rows["v1 reproduced"][4] == e.v1.model_sha256[:8]  # the same model file
    for w in e.concurrent["writers"]:
        assert rows[f"writer {w['writer']}"][5] == f"v{w['version']}"
    shown = json.loads((lab["out_dir"] / "experiments.json").read_text())
    assert shown == e.experiments["raw"]
    audit = read_audit_log(lab["out_dir"] / "alias_audit.jsonl")
    assert audit == e.moves


# --- a claim must fail when its numbers say so ------------------------------------------------


def test_claims_do_not_hold_on_evidence_that_contradicts_them(lab) -> None:
    e: Evidence = lab["evidence"]
    assert all(c.passed for c in claims_module.make_claims(e))
    # A reproduction that got v2's metric instead of v1's is not a reproduction.
    other = replace(e, reproduced={**e.reproduced, "metrics": e.v2.metrics})
    assert not claims_module.metric_reproduced_exactly(other).passed
    # If `git checkout` alone had restored the data, there would be nothing to show.
    restore = {**e.lineage[-1], "after_git_checkout": e.lineage[-1]["after_dvc_checkout"]}
    assert not claims_module.data_restored_identical(
        replace(e, lineage=[*e.lineage[:-1], restore])
    ).passed
    # One version serving another writer's model means something was overwritten.
    clobbered = {**e.concurrent, "own_model": [True, False, True]}
    assert not claims_module.concurrent_registrations_safe(replace(e, concurrent=clobbered)).passed
    # Writers that registered one after the other prove nothing about concurrency.
    one_by_one = {**e.concurrent, "overlapped": False}
    assert not claims_module.concurrent_registrations_safe(replace(e, concurrent=one_by_one)).passed
    # An experiment recorded as a branch commit is not "no commit".
    committed = {**e.experiments, "commits_unchanged": False}
    assert not claims_module.experiments_tracked(replace(e, experiments=committed)).passed
    # A rollback that did not restore the old predictions exactly.
    drifted = {**e.aliases, "max_diff_rolled_back": 1e-9}
    assert not claims_module.rollback_restores_predictions(replace(e, aliases=drifted)).passed


# --- fast checks of the pieces --------------------------------------------------------------


def test_the_scratch_is_removed_even_when_the_lab_fails(repo_root: Path) -> None:
    head = subprocess.run(
        ["git", "rev-parse", "HEAD"], cwd=repo_root, capture_output=True, text=True, check=True
    ).stdout.strip()
    with pytest.raises(RuntimeError, match="boom"):
        with scratch_workspace(repo_root, timeout_s=60) as ws:
            root = ws.root
            assert ws.git("rev-parse", "HEAD").strip() == head
            raise RuntimeError("boom")
    assert not root.exists()


def test_stopping_the_scratch_stops_commands_of_other_threads_at_once(tmp_path: Path) -> None:
    # On an error or Ctrl-C the lab stops the scratch before it waits for its teammates'
    # threads: their running commands end now (not when done) and no new one starts.
    from concurrent.futures import ThreadPoolExecutor

    (tmp_path / "repo").mkdir()
    ws = Workspace(tmp_path, dict(os.environ), timeout_s=120, dvc_exe="sleep")
    with ThreadPoolExecutor(1) as pool:
        job = pool.submit(ws.dvc, "60")  # a teammate's long `dvc repro`
        deadline = time.monotonic() + 10
        while not ws._running and time.monotonic() < deadline:
            time.sleep(0.01)
        (proc,) = ws._running
        ws.stop()
        # ended now, not after its 60 s: the result arrives well inside the 30 s wait
        with pytest.raises(ScratchError, match="stopped: the lab is stopping"):
            job.result(timeout=30)
    # Stopped by a signal, not run to its end (a `sleep 60` that finished would exit 0).
    assert proc.poll() is not None and proc.returncode < 0
    with pytest.raises(ScratchError, match="not started: the lab is stopping"):
        ws.git("status")


def test_a_failing_command_names_itself_and_its_output(repo_root: Path) -> None:
    with scratch_workspace(repo_root, timeout_s=60) as ws:
        with pytest.raises(ScratchError, match=r"`git checkout no-such-rev` failed \(exit"):
            ws.git("checkout", "no-such-rev")


def test_a_source_that_is_not_a_git_repository_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ScratchError, match="not a git repository"):
        with scratch_workspace(tmp_path, timeout_s=10):
            pass


def test_only_the_generate_section_changes(tmp_path: Path) -> None:
    path = tmp_path / "params.yaml"
    path.write_text(
        "# header\ngenerate:\n  n_rows: 6000   # rows\n  seed: 42\n\nprepare:\n  seed: 42\n"
    )
    set_generate_params(path, 1000, 7)
    text = path.read_text()
    expected = {"generate": {"n_rows": 1000, "seed": 7}, "prepare": {"seed": 42}}
    assert yaml.safe_load(text) == expected
    assert text.startswith("# header\n")
    other = tmp_path / "other.yaml"
    other.write_text("train:\n  seed: 1\n")
    with pytest.raises(ScratchError, match="no generate"):
        set_generate_params(other, 1000, 7)


def test_a_failing_lab_removes_its_scratch_and_fails_its_run(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, client
) -> None:
    import labs.versioning.lab as lab_module

    def broken(*args: Any, **kwargs: Any) -> None:
        raise RuntimeError("dvc repro exploded")

    monkeypatch.setattr(lab_module, "build_data_version", broken)
    lines: list[str] = []
    with pytest.raises(RuntimeError, match="exploded"):
        run(
            replace(SMALL, registered_model="churn-model-versioning-failing"),
            tmp_path,
            echo=lines.append,
        )
    (root,) = scratch_roots(lines)
    assert not root.exists()
    experiment = client.get_experiment_by_name(EXPERIMENT)
    runs = client.search_runs([experiment.experiment_id], order_by=["attributes.start_time DESC"])
    assert runs[0].info.status == "FAILED"


def test_a_registered_model_the_lab_did_not_create_is_never_deleted(client, tmp_path) -> None:
    client.create_registered_model("someone-elses-model")
    client.create_model_version("someone-elses-model", source="file:///nowhere")
    params = VersioningParams(registered_model="someone-elses-model")
    with pytest.raises(RegistryError, match="was not created by this lab"):
        run(params, tmp_path)
    assert len(client.search_model_versions("name='someone-elses-model'")) == 1


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"registered_model": MODEL_NAME}, "must not be the project's 'churn-model'"),
        ({"v2_rows": 3000, "v2_seed": 11}, "v2 must differ from v1"),
        ({"v1_rows": 50}, r"v1_rows must be >= 200"),
        ({"experiments": {"x": ["C=1"]}}, r"'C=1' is not 'section.key=value'"),
        ({"experiments": {"x": "train.C=1"}}, "must be a list"),
        ({"experiments": {}}, "at least one"),
        ({"writers": 1}, "writers must be >= 2"),
    ],
)
def test_bad_parameters_are_refused(changes: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        VersioningParams(**changes)
