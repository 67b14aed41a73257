"""The DVC pipeline end to end in a temporary copy of the repo, and the stage CLI's errors."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import mlflow
import numpy as np
import pytest

from labs.common.plots import read_drawing
from labs.common.registry import MODEL_NAME


def copy_repo(repo_root: Path, dest: Path) -> Path:
    """Copy what git would clone (tracked + new, not ignored) into ``dest`` as a new git repo."""
    files = subprocess.run(
        ["git", "ls-files", "--cached", "--others", "--exclude-standard", "-z"],
        cwd=repo_root,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split("\0")
    for name in filter(None, files):
        src = repo_root / name
        if src.is_file():
            (dest / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, dest / name)
    subprocess.run(["git", "init", "-q"], cwd=dest, check=True)
    return dest


def dvc(cwd: Path, *args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(Path(sys.executable).parent / "dvc"), *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )


@pytest.mark.slow
def test_dvc_repro_builds_everything_then_is_a_no_op(repo_root: Path, tmp_path: Path) -> None:
    work = copy_repo(repo_root, tmp_path / "repo")
    store = f"sqlite:///{tmp_path / 'mlflow.db'}"
    env = {
        **os.environ,
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
        "MLFLOW_TRACKING_URI": store,
    }
    first = dvc(work, "repro", env=env)
    assert first.returncode == 0, first.stderr + first.stdout
    for stage in ("generate", "prepare", "train", "evaluate"):
        assert f"Running stage '{stage}'" in first.stdout

    metrics = json.loads((work / "reports/baseline/holdout.json").read_text())
    assert 0.75 < metrics["roc_auc"] < 0.9
    assert metrics["n_rows"] == 1500
    # The ROC plot draws the curve of this model on 0–1 axes, labelled with the measured AUC.
    (ax,) = read_drawing(work / "reports/baseline/roc.png")["axes"]
    assert ax["title"] == "Holdout ROC curve"
    assert ax["xlim"] == ax["ylim"] == [0.0, 1.0]
    curve, chance = ax["lines"]
    assert curve["label"] == f"baseline (AUC {metrics['roc_auc']:.3f})"
    assert chance["label"] == "chance" and chance["y"] == [0.0, 1.0]
    assert curve["x"][0] == curve["y"][0] == 0.0 and curve["x"][-1] == curve["y"][-1] == 1.0
    assert np.trapezoid(curve["y"], curve["x"]) == pytest.approx(metrics["roc_auc"], abs=1e-6)
    # Same code and params → the same data and model bytes as the committed dvc.lock says.
    assert (work / "dvc.lock").read_text() == (repo_root / "dvc.lock").read_text()

    second = dvc(work, "repro", env=env)
    assert second.returncode == 0
    assert "Data and pipelines are up to date" in second.stdout
    assert "Running stage" not in second.stdout
    shown = json.loads(dvc(work, "metrics", "show", "--json", env=env).stdout)
    (workspace,) = shown.values()
    assert workspace["data"]["reports/baseline/holdout.json"]["data"] == metrics

    client = mlflow.MlflowClient(tracking_uri=store, registry_uri=store)
    version = client.get_model_version_by_alias(MODEL_NAME, "champion")
    assert str(version.version) == "1"
    assert len(version.tags["data_md5"]) == 32 and len(version.tags["model_sha256"]) == 64
    run = client.get_run(version.run_id)
    assert run.data.metrics["holdout_roc_auc"] == pytest.approx(metrics["roc_auc"], abs=1e-6)


def test_stage_reports_a_missing_param_key_by_name_and_file(tmp_path: Path) -> None:
    (tmp_path / "params.yaml").write_text("generate:\n  seed: 1\n")
    result = subprocess.run(
        [sys.executable, "-m", "labs.common.stages", "generate", "--out", str(tmp_path / "x.csv")],
        capture_output=True,
        text=True,
        env={**os.environ, "LABS_ROOT": str(tmp_path)},
        timeout=60,
    )
    assert result.returncode == 2
    assert f"generate.n_rows is missing in {tmp_path / 'params.yaml'}" in result.stderr
    assert "Traceback" not in result.stderr
    assert not (tmp_path / "x.csv").exists()


def test_stages_with_tracking_off_write_the_same_model_and_log_nothing(
    repo_root: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The versioning lab's scratch clones run the stages with LABS_STAGE_TRACKING=off: the DVC
    # outputs must be the very bytes dvc.lock pins (built with tracking on), and no MLflow run
    # may appear anywhere.
    import yaml

    from labs.common import stages

    lock = yaml.safe_load((repo_root / "dvc.lock").read_text())
    (pinned,) = lock["stages"]["train"]["outs"]
    client = mlflow.MlflowClient()

    def logged() -> tuple[list[str], list[str]]:
        experiments = [e.experiment_id for e in client.search_experiments()]
        return experiments, [r.info.run_id for r in client.search_runs(experiments)]

    before = logged()
    monkeypatch.setenv(stages.TRACKING_SWITCH, "off")
    prepared = repo_root / "data" / "prepared"
    assert stages.train(prepared / "train.csv", tmp_path / "model.skops") is None
    assert hashlib.md5((tmp_path / "model.skops").read_bytes()).hexdigest() == pinned["md5"]
    metrics = stages.evaluate(
        tmp_path / "model.skops", prepared / "holdout.csv", tmp_path / "m.json", tmp_path
    )
    pinned_metrics = json.loads((repo_root / "reports/baseline/holdout.json").read_text())
    assert {k: round(v, 6) for k, v in metrics.items()} == pinned_metrics
    assert logged() == before

    monkeypatch.setenv(stages.TRACKING_SWITCH, "no")
    with pytest.raises(ValueError, match="LABS_STAGE_TRACKING must be 'on' or 'off', got 'no'"):
        stages.train(prepared / "train.csv", tmp_path / "other.skops")
    assert not (tmp_path / "other.skops").exists()
