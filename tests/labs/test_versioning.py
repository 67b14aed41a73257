"""Lab versioning: every claim asserted from its numbers; the user's checkout is never touched.

The lab runs once for the module (DVC repros dominate: ~1–2 min on 2 cores). Its registry
part writes to this test session's MLflow store (tests/conftest.py), never the user's.
"""

from __future__ import annotations

import hashlib
import json
import subprocess
import tempfile
from dataclasses import replace
from pathlib import Path
from typing import Any

import mlflow
import pytest
import yaml

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
from labs.common.results import LabResult, finish
from labs.common.tracking import configure_tracking
from labs.versioning.lab import (
    EXPERIMENT,
    ScratchError,
    VersioningParams,
    _set_generate_params,
    run,
    scratch_workspace,
)

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


def measured(result: LabResult, claim: str) -> dict[str, Any]:
    return dict(result.claim(claim).measured)


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


def scratch_dirs() -> set[str]:
    return {p.name for p in Path(tempfile.gettempdir()).glob("labs-versioning-*")}


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
    before, scratch_before = snapshot(user), scratch_dirs()
    real_refs = snapshot(repo_root)["exp_refs"]
    result = run(SMALL, out_dir, source=user)
    return {
        "result": result,
        "exit_code": finish(result, out_dir),
        "out_dir": out_dir,
        "before": before,
        "after": snapshot(user),
        "real_exp_refs": (real_refs, snapshot(repo_root)["exp_refs"]),
        "new_scratch_dirs": scratch_dirs() - scratch_before,
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
    assert lab["new_scratch_dirs"] == set()


def test_new_data_is_a_new_version_with_other_metrics(lab) -> None:
    m = measured(lab["result"], "data_versions_distinct")
    assert m["data_md5_v1"] != m["data_md5_v2"]
    assert (m["rows_v1"], m["rows_v2"]) == (SMALL.v1_rows, SMALL.v2_rows)
    assert m["roc_auc_v1"] != m["roc_auc_v2"]


def test_git_checkout_alone_is_not_enough_dvc_checkout_restores_v1_exactly(lab) -> None:
    m = measured(lab["result"], "data_restored_identical")
    assert m["files"] >= 5  # raw, train, holdout, model, metrics (+ plots)
    assert m["identical_after_git_checkout_only"] == 0
    assert m["identical_after_dvc_checkout"] == m["files"]
    assert m["data_md5_restored"] == m["data_md5_v1"]
    assert m["data_md5_v1"] == measured(lab["result"], "data_versions_distinct")["data_md5_v1"]


def test_a_teammate_reproduces_v1s_metric_exactly(lab) -> None:
    m = measured(lab["result"], "metric_reproduced_exactly")
    assert m["roc_auc_reproduced"] == m["roc_auc_v1"]  # exactly, not approximately
    assert m["roc_auc_reproduced"] != m["roc_auc_v2"]
    assert m["metrics_identical"] and m["model_identical"] and m["dvc_lock_unchanged"]


def test_push_then_pull_into_an_empty_cache_restores_the_bytes(lab) -> None:
    m = measured(lab["result"], "remote_roundtrip_identical")
    assert m["cache_files_before"] == 0 and m["identical_before"] == 0
    assert m["identical_after"] == m["files"] == m["cache_files_after"]
    assert m["remote_files"] >= m["files"]


def test_experiments_are_tracked_without_commits(lab) -> None:
    m = measured(lab["result"], "experiments_tracked")
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
    m = measured(lab["result"], "lineage_complete")
    assert m["versions_checked"] == 2 and m["tags_missing"] == 0
    assert m["data_matches"] == m["model_matches"] == m["lock_pins_data"] == 2
    # The tags themselves, read back from the registry.
    rollback_m = measured(lab["result"], "rollback_restores_predictions")
    v1 = client.get_model_version(SMALL.registered_model, str(rollback_m["champion_before"]))
    assert all(v1.tags.get(tag) for tag in LINEAGE_TAGS)
    assert len(v1.tags["git_commit"]) == 40
    assert v1.tags["data_md5"] == measured(lab["result"], "data_versions_distinct")["data_md5_v1"]
    assert v1.tags["data_version"] == "v1"


def test_rollback_restores_the_old_predictions_exactly(lab, client) -> None:
    m = measured(lab["result"], "rollback_restores_predictions")
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
    m = measured(lab["result"], "rollback_refused_without_previous")
    assert m["refused"] and m["audit_lines_added"] == 0
    assert m["champion_after_refusal"] == "1"
    assert "v1 has no previous champion" in m["error"]


def test_every_alias_move_is_in_the_audit_log(lab) -> None:
    m = measured(lab["result"], "alias_moves_audited")
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
    m = measured(lab["result"], "concurrent_registrations_safe")
    assert len(set(m["versions"])) == m["new_versions"] == SMALL.writers
    assert sorted(m["versions"]) == [3, 4]  # after v1 and v2
    assert m["each_serves_its_model"] == SMALL.writers
    assert m["overlapped"]  # they really registered at the same time
    for number in m["versions"]:
        assert client.get_model_version(SMALL.registered_model, str(number))


def test_summary_mlflow_run_and_artifacts(lab, client) -> None:
    result: LabResult = lab["result"]
    assert lab["exit_code"] == 0, [c.id for c in result.claims if not c.passed]
    data = json.loads((lab["out_dir"] / "summary.json").read_text())
    assert data["lab"] == "versioning" and len(data["claims"]) == 10
    assert {c["id"] for c in data["claims"]} >= {
        "data_restored_identical",
        "metric_reproduced_exactly",
        "remote_roundtrip_identical",
        "lineage_complete",
        "rollback_restores_predictions",
        "concurrent_registrations_safe",
    }
    run = client.get_run(result.mlflow["run_id"])
    assert client.get_experiment(run.info.experiment_id).name == EXPERIMENT == "lab-versioning"
    assert run.data.metrics["claim.rollback_restores_predictions.passed"] == 1.0
    assert run.data.params["registered_model"] == SMALL.registered_model
    png = next(Path(a) for a in result.artifacts if a.endswith(".png"))
    assert png.stat().st_size > 10_000
    table = (lab["out_dir"] / "versions.md").read_text()
    for row in ("data v1", "data v2", "v1 reproduced", "exp threshold-low", "writer 1"):
        assert f"| {row} " in table


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
    _set_generate_params(path, 1000, 7)
    text = path.read_text()
    expected = {"generate": {"n_rows": 1000, "seed": 7}, "prepare": {"seed": 42}}
    assert yaml.safe_load(text) == expected
    assert text.startswith("# header\n")
    other = tmp_path / "other.yaml"
    other.write_text("train:\n  seed: 1\n")
    with pytest.raises(ScratchError, match="no generate"):
        _set_generate_params(other, 1000, 7)


def test_a_failing_lab_removes_its_scratch_and_fails_its_run(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, client
) -> None:
    import labs.versioning.lab as lab_module

    def broken(*args: Any, **kwargs: Any) -> None:
        raise RuntimeError("dvc repro exploded")

    monkeypatch.setattr(lab_module, "build_data_version", broken)
    before = scratch_dirs()
    with pytest.raises(RuntimeError, match="exploded"):
        run(replace(SMALL, registered_model="churn-model-versioning-failing"), tmp_path)
    assert scratch_dirs() - before == set()
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
