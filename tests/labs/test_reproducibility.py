"""Lab reproducibility: every claim asserted from its numbers, on small, fast parameters, in a
clone of the repo standing in for the user's checkout (which must come out byte-identical)."""

from __future__ import annotations

import hashlib
import shutil
import subprocess
import tempfile
from dataclasses import replace
from pathlib import Path
from typing import Any

import mlflow
import pytest

from labs.common.catalogue import topic
from labs.common.plots import read_drawing
from labs.common.results import finish, read_summary
from labs.common.tracking import configure_tracking
from labs.reproducibility.claims import lock_claim
from labs.reproducibility.counterfactuals import lock_resolved_without_hashes
from labs.reproducibility.environment import check_environment, find_uv
from labs.reproducibility.hazards import dot_under_threads, set_orders, summation_orders
from labs.reproducibility.lab import EXPERIMENT, run
from labs.reproducibility.params import ReproducibilityParams
from labs.reproducibility.pipeline import dependent_stages, set_param
from labs.reproducibility.rebuild import NotRebuildableError, rebuild_run
from labs.reproducibility.scratch import PREFIX, dvc_cache_dir, lock_outs, md5_file

SMALL = ReproducibilityParams(
    n_estimators=10,
    blas_vector_size=100_000,
    bootstrap_tasks=8,
    hash_seeds=(0, 1, 2),
    summation_values=20_000,
    digest_rows=10_500,
    digest_changed_from=10_000,
    command_timeout_s=120,
)


def measured(summary: Any, claim_id: str) -> dict[str, Any]:
    return dict(summary.claim(claim_id).measured)


def snapshot(repo: Path) -> dict[str, Any]:
    """Every file of the checkout (bytes), git's view of it, and its worktrees."""

    def git(*args: str) -> str:
        return subprocess.run(
            ["git", *args], cwd=repo, capture_output=True, text=True, check=True
        ).stdout

    files = {
        str(p.relative_to(repo)): hashlib.md5(p.read_bytes()).hexdigest()
        for p in sorted(repo.rglob("*"))
        if p.is_file() and ".git" not in p.relative_to(repo).parts[:1]
    }
    return {
        "files": files,
        "status": git("status", "--porcelain", "--untracked-files=all", "--ignored"),
        "worktrees": git("worktree", "list", "--porcelain"),
        "git_dir": sorted(str(p.relative_to(repo / ".git")) for p in (repo / ".git").iterdir()),
    }


def scratch_dirs() -> set[str]:
    return {p.name for p in Path(tempfile.gettempdir()).glob(f"{PREFIX}*")}


@pytest.fixture(scope="module")
def user_checkout(tmp_path_factory: pytest.TempPathFactory, repo_root: Path) -> Path:
    """A clone of this repo as a user has it after `make setup`: the built DVC outputs in place,
    the shared DVC cache configured, an uncommitted edit and an untracked file."""
    user = tmp_path_factory.mktemp("user") / "repo"
    subprocess.run(["git", "clone", "--quiet", str(repo_root), str(user)], check=True)
    for path, md5 in lock_outs((user / "dvc.lock").read_text()).items():
        if md5_file(repo_root / path) == md5:
            (user / path).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(repo_root / path, user / path)
    (user / ".dvc" / "config.local").write_text(f"[cache]\n    dir = {dvc_cache_dir(repo_root)}\n")
    with (user / "README.md").open("a") as readme:
        readme.write("\nan uncommitted edit\n")
    (user / "notes.txt").write_text("untracked\n")
    return user


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory, user_checkout: Path) -> dict[str, Any]:
    out_dir = tmp_path_factory.mktemp("reproducibility")
    before, scratch_before = snapshot(user_checkout), scratch_dirs()
    result = run(SMALL, out_dir, source=user_checkout)
    exit_code = finish(result, out_dir)
    return {
        "result": result,
        "exit_code": exit_code,
        "summary": read_summary(out_dir / "summary.json"),
        "out_dir": out_dir,
        "before": before,
        "after": snapshot(user_checkout),
        "new_scratch_dirs": scratch_dirs() - scratch_before,
    }


def test_every_claim_holds_and_the_summary_follows_the_contract(lab) -> None:
    summary = lab["summary"]
    assert lab["exit_code"] == 0, [c.id for c in summary.claims if not c.passed]
    assert summary.lab == "reproducibility" and summary.passed
    assert summary.question == topic("reproducibility").question
    assert len(summary.claims) == 12
    assert summary.mlflow == {
        "experiment": "lab-reproducibility",
        "run_id": summary.mlflow["run_id"],
    }
    assert summary.params["seed"] == SMALL.seed and summary.params["hash_seeds"] == [0, 1, 2]


def test_the_users_checkout_is_byte_identical_and_the_scratch_is_gone(lab) -> None:
    before, after = lab["before"], lab["after"]
    assert after["files"] == before["files"]
    assert after["status"] == before["status"]
    assert " M README.md" in after["status"] and "?? notes.txt" in after["status"]
    assert after["worktrees"] == before["worktrees"]  # no worktree added, not even left behind
    assert after["git_dir"] == before["git_dir"]
    assert lab["new_scratch_dirs"] == set()


def test_same_seed_same_bytes_other_seed_detected(lab) -> None:
    same = measured(lab["summary"], "same_seed_same_bytes")
    assert same["roc_auc_run_1"] == same["roc_auc_run_2"]  # exactly
    assert same["model_sha256_run_1"] == same["model_sha256_run_2"]
    other = measured(lab["summary"], "other_seed_other_result")
    assert other["model_sha256_other_seed"] != same["model_sha256_run_1"]
    assert other["roc_auc_difference"] != 0


def test_thread_count_workers_set_order_and_summation(lab) -> None:
    blas = measured(lab["summary"], "blas_threads_change_bits")
    assert blas["dot_threads_1"] != blas["dot_threads_2"]
    assert 0 < blas["max_abs_difference"] < 1e-6 * abs(blas["dot_threads_1"])  # last bits only
    assert blas["distinct_within_a_pinned_count"] == 1
    workers = measured(lab["summary"], "workers_ignore_the_global_seed")
    assert workers["distinct_global_seed_in_process"] == 1  # the global seed works here …
    assert workers["distinct_global_seed_workers"] == 2  # … and never reaches the workers
    assert workers["distinct_spawned_seeds_anywhere"] == 1
    assert workers["forest_fit_identical"]
    order = measured(lab["summary"], "set_order_depends_on_hash_seed")
    assert order["distinct_orders_unsorted"] >= 2 and order["distinct_orders_sorted"] == 1
    assert order["distinct_model_sha256_unsorted"] == order["distinct_orders_unsorted"]
    assert order["distinct_model_sha256_sorted"] == 1
    sums = measured(lab["summary"], "summation_order_changes_sums")
    assert sums["distinct_sum"] >= 2 and sums["distinct_fsum"] == 1


def test_the_run_records_every_input(lab, user_checkout: Path) -> None:
    m = measured(lab["summary"], "run_records_every_input")
    assert m["fields_missing"] == [] and m["data_pinned_by_dvc_lock"] == 2
    assert m["git_dirty"] == "true"  # the uncommitted README edit is recorded
    configure_tracking()
    run_ = mlflow.MlflowClient().get_run(lab["summary"].mlflow["run_id"])
    tags = run_.data.tags
    head = subprocess.run(
        ["git", "rev-parse", "HEAD"], cwd=user_checkout, capture_output=True, text=True
    ).stdout.strip()
    assert tags["git_commit"] == head
    lock = hashlib.sha256((user_checkout / "requirements.lock").read_bytes()).hexdigest()
    assert tags["requirements_lock_sha256"] == lock
    assert tags["data.train.md5"] == md5_file(user_checkout / "data/prepared/train.csv")
    assert run_.data.params["train.seed"] == str(SMALL.seed)
    assert run_.data.metrics["claim.rebuilt_from_run_id.passed"] == 1.0
    assert mlflow.get_experiment(run_.info.experiment_id).name == EXPERIMENT


def test_mlflow_digest_is_blind_after_row_10000(lab) -> None:
    m = measured(lab["summary"], "mlflow_digest_sees_first_rows_only")
    assert m["digest_original"] == m["digest_changed_late"]
    assert m["md5_original"] != m["md5_changed_late"]
    assert m["digest_changed_row_0"] != m["digest_original"]  # the control: it does hash rows


def test_rebuild_from_the_run_id_matches(lab) -> None:
    m = measured(lab["summary"], "rebuilt_from_run_id")
    assert m["roc_auc_rebuilt"] == m["roc_auc_recorded"]
    assert m["model_sha256_identical"] and m["data_identical"] and m["code_from_worktree"]


def test_dvc_reruns_only_dependents_then_nothing(lab) -> None:
    change = measured(lab["summary"], "param_change_reruns_dependents_only")
    assert change["ran"] == change["expected"] == ["evaluate"]
    assert change["skipped"] == 3 and change["outputs_restored"] >= 5
    noop = measured(lab["summary"], "second_repro_is_a_noop")
    assert noop == {"ran": 0, "bytes_unchanged": True}


def test_the_lock_is_what_is_installed_and_uv_rebuilds_it(lab) -> None:
    claim = lab["summary"].claim("lock_file_reproducible")
    m = dict(claim.measured)
    assert claim.checked and claim.passed  # uv's rebuild ran (offline, from uv's cache)
    assert m["unpinned"] == m["without_sha256"] == m["version_mismatches"] == 0
    assert m["pyproject_unmet"] == 0 and m["pinned_for_this_python"] > 100
    assert m["uv_rebuild_identical"] is True
    assert m["uv_rebuilt_packages"] == m["venv_packages"] == m["pinned_for_this_python"]


def test_a_lock_without_hashes_fails_the_lock_claim(repo_root: Path) -> None:
    # The lab's own check (check_environment → lock_claim), on the counterfactual's lock.
    env = check_environment(repo_root, 120, lock_resolved_without_hashes)
    claim = lock_claim(env)
    m = dict(claim.measured)
    assert not claim.passed and claim.checked  # measured wrong, not "could not check"
    assert m["without_sha256"] == m["requirements"] > 100 and m["unpinned"] == 0
    assert m["version_mismatches"] == 0  # the versions are right: only the hashes are gone
    assert "must have a hash" in m["uv_error"] and m["uv_rebuild_identical"] is None


def test_a_rebuild_that_could_not_run_is_not_checked_never_passed(
    repo_root: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from labs.reproducibility import environment

    monkeypatch.setattr(environment, "find_uv", lambda *roots: None)
    claim = lock_claim(check_environment(repo_root, 120))
    assert not claim.passed and not claim.checked
    assert "uv not found" in claim.measured["not_checked"]
    assert claim.measured["without_sha256"] == 0  # the lock itself was fine


def test_uv_is_found_the_way_the_makefile_finds_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from labs.reproducibility import environment

    monkeypatch.setattr(environment.shutil, "which", lambda name: None)
    clone, project = tmp_path / "clone", tmp_path / "project"
    assert find_uv(clone, project) is None
    boot = project / ".uv-bootstrap" / "bin" / "uv"
    boot.parent.mkdir(parents=True)
    boot.write_text("#!/bin/sh\n")
    assert find_uv(clone, project) == [str(boot)]  # CI's private bootstrap venv
    monkeypatch.setattr(environment.shutil, "which", lambda name: f"/opt/{name}")
    assert find_uv(clone, project) == ["/opt/uv"]  # on PATH first


def test_the_figure_shows_one_answer_after_each_fix(lab) -> None:
    png = next(Path(a) for a in lab["summary"].artifacts if a.endswith(".png"))
    left, right = read_drawing(png)["axes"]
    naive, fixed = (bar["heights"] for bar in left["bars"])
    assert fixed == [1, 1, 1, 1, 1] and min(naive) >= 2
    assert right["bars"][0]["heights"] == [1, 0]
    table = (lab["out_dir"] / "provenance.md").read_text()
    assert "| model sha256 " in table and "DIFFERENT" not in table


# --- negative cases and pieces, fast ---------------------------------------------------------


def test_a_changed_thread_count_is_detected_as_a_different_result() -> None:
    one, two = dot_under_threads(100_000, 1, seed=3), dot_under_threads(100_000, 2, seed=3)
    assert one[0] == one[1] and two[0] == two[1]  # pinned: repeats exactly
    assert one[0] != two[0]  # another thread count: another result
    assert dot_under_threads(100_000, 2, seed=3) == two


def test_sorted_set_order_ignores_the_hash_seed() -> None:
    orders = set_orders(["b", "a", "c", "d", "e"], [0, 1, 2, 3])
    assert len({tuple(o["sorted"]) for o in orders}) == 1
    assert len({tuple(o["unsorted"]) for o in orders}) >= 2


def test_fsum_is_order_independent() -> None:
    sums = summation_orders(5_000, seed=1)
    assert sums["distinct_fsum"] == 1 and sums["distinct_sum"] >= 2


def test_a_run_without_lineage_is_refused(repo_root: Path) -> None:
    configure_tracking()
    experiment = mlflow.set_experiment("lab-reproducibility-bare")
    with mlflow.start_run(experiment_id=experiment.experiment_id) as bare:
        pass
    with pytest.raises(NotRebuildableError, match="lacks the tags"):
        rebuild_run(bare.info.run_id, repo_root)


def test_dependent_stages_follow_params_and_outputs(repo_root: Path) -> None:
    dvc_yaml = (repo_root / "dvc.yaml").read_text()
    assert dependent_stages(dvc_yaml, "evaluate.threshold") == ["evaluate"]
    assert dependent_stages(dvc_yaml, "train.C") == ["train", "evaluate"]
    assert dependent_stages(dvc_yaml, "generate.seed") == [
        "generate",
        "prepare",
        "train",
        "evaluate",
    ]


def test_set_param_changes_one_line(tmp_path: Path) -> None:
    path = tmp_path / "params.yaml"
    path.write_text("# head\ntrain:\n  C: 1.0   # note\nevaluate:\n  threshold: 0.5\n")
    set_param(path, "evaluate.threshold=0.4")
    assert path.read_text() == "# head\ntrain:\n  C: 1.0   # note\nevaluate:\n  threshold: 0.4\n"
    with pytest.raises(ValueError, match="no evaluate.nothing"):
        set_param(path, "evaluate.nothing=1")


def test_dvc_cache_dir_reads_local_config_first(tmp_path: Path) -> None:
    (tmp_path / ".dvc").mkdir()
    assert dvc_cache_dir(tmp_path) == tmp_path / ".dvc" / "cache"
    (tmp_path / ".dvc" / "config").write_text("[core]\n    remote = x\n[cache]\n    dir = ../c1\n")
    assert dvc_cache_dir(tmp_path) == (tmp_path / "c1").resolve()
    (tmp_path / ".dvc" / "config.local").write_text("[cache]\n    dir = /somewhere/else\n")
    assert dvc_cache_dir(tmp_path) == Path("/somewhere/else")


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"other_seed": 42}, "other_seed must differ"),
        ({"blas_threads": (2, 2)}, "two counts"),
        ({"hash_seeds": (1,)}, "at least two hash seeds"),
        ({"n_jobs": 1}, "n_jobs and bootstrap_tasks"),
        ({"digest_changed_from": 20_000}, "inside digest_rows"),
        ({"changed_param": "threshold"}, "is not k.v=x"),
    ],
)
def test_bad_parameters_are_refused(changes: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        replace(SMALL, **changes)
