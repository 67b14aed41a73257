"""Data versions: each one a commit of ``params.yaml`` + ``dvc.lock`` in the scratch clone.

Building a version runs the project's own DVC pipeline (generate → prepare → train →
evaluate); what identifies it afterwards is what DVC recorded: the md5 of every output. A
teammate's clone gets the bytes from the DVC remote and reproduces the metric.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from labs.common.tracking import file_sha256
from labs.versioning.scratch import ScratchError, Workspace

# Paths inside the project's DVC pipeline (dvc.yaml): what a model version is traced back to.
TRAIN_DATA = "data/prepared/train.csv"
HOLDOUT_DATA = "data/prepared/holdout.csv"
MODEL_FILE = "models/churn-model.skops"
METRICS_FILE = "reports/baseline/holdout.json"
METRIC = "roc_auc"


@dataclass(frozen=True)
class DataVersion:
    """One committed state of the pipeline in the scratch repo: its commit, bytes and metrics."""

    label: str
    commit: str
    rows: int
    seed: int
    md5: dict[str, str]  # every DVC output → md5 of the file as built
    metrics: dict[str, float]
    model_sha256: str
    seconds: float


def build_data_version(ws: Workspace, label: str, rows: int, seed: int) -> DataVersion:
    """Set the generate stage's params, ``dvc repro``, commit params.yaml + dvc.lock."""
    set_generate_params(ws.repo / "params.yaml", rows, seed)
    start = time.perf_counter()
    ws.dvc("repro")
    return commit_data_version(ws, label, rows, seed, time.perf_counter() - start)


def commit_data_version(
    ws: Workspace, label: str, rows: int, seed: int, seconds: float
) -> DataVersion:
    """Commit params.yaml + dvc.lock as data version ``label``; what the checkout now holds."""
    ws.git("add", "params.yaml", "dvc.lock")
    ws.git("commit", "--quiet", "-m", f"data {label}: generate.n_rows={rows}, generate.seed={seed}")
    return DataVersion(
        label=label,
        commit=ws.git("rev-parse", "HEAD").strip(),
        rows=rows,
        seed=seed,
        md5=file_md5s(ws.repo, lock_outs(ws.repo)),
        metrics=read_metrics(ws.repo),
        model_sha256=file_sha256(ws.repo / MODEL_FILE),
        seconds=seconds,
    )


def set_generate_params(path: Path, rows: int, seed: int) -> None:
    """Set ``generate.n_rows`` and ``generate.seed`` in a params.yaml, nothing else."""
    set_params(path, "generate", {"n_rows": rows, "seed": seed})


def set_params(path: Path, section: str, wanted: Mapping[str, Any]) -> None:
    """Set keys of one top-level ``section`` of a params.yaml, nothing else."""
    # A line edit, not a YAML round trip: comments survive and `git diff` shows two lines.
    lines = path.read_text().splitlines(keepends=True)
    current, done = None, set()
    for i, line in enumerate(lines):
        if line.strip() and not line[0].isspace():
            current = line.split(":")[0].strip()
        elif current == section:
            key = line.strip().split(":")[0]
            if key in wanted:
                indent = line[: len(line) - len(line.lstrip())]
                lines[i] = f"{indent}{key}: {wanted[key]}\n"
                done.add(key)
    if done != set(wanted):
        raise ScratchError(f"{path} has no {section}.{sorted(set(wanted) - done)} to change")
    path.write_text("".join(lines))


def lock_outs(repo: Path) -> list[str]:
    """Every output path that ``dvc.lock`` pins (data, model, metrics, plots)."""
    lock = yaml.safe_load((repo / "dvc.lock").read_text())
    return sorted(o["path"] for stage in lock["stages"].values() for o in stage.get("outs", []))


def lock_md5(repo: Path, path: str) -> str | None:
    """The md5 ``dvc.lock`` records for output ``path``."""
    lock = yaml.safe_load((repo / "dvc.lock").read_text())
    for stage in lock["stages"].values():
        for out in stage.get("outs", []):
            if out["path"] == path:
                return out["md5"]
    return None


def file_md5s(repo: Path, paths: Sequence[str]) -> dict[str, str]:
    """md5 of each file (DVC's own content hash for a file); "missing" if it is not there."""
    return {
        p: hashlib.md5((repo / p).read_bytes()).hexdigest() if (repo / p).is_file() else "missing"
        for p in paths
    }


def read_metrics(repo: Path) -> dict[str, float]:
    """The evaluate stage's holdout metrics (a DVC metrics file) as built in ``repo``."""
    return json.loads((repo / METRICS_FILE).read_text())


def same_files(found: Mapping[str, str], expected: Mapping[str, str]) -> int:
    """How many of ``expected``'s files have exactly the expected bytes."""
    return sum(found.get(p) == md5 for p, md5 in expected.items())


def teammate_reproduces(ws: Workspace, v1: DataVersion) -> tuple[dict[str, Any], dict[str, Any]]:
    """A teammate's machine: a fresh clone at v1 with an empty DVC cache and its own MLflow
    store; ``dvc pull`` from the shared remote, then ``dvc repro --force`` from training on.

    Returns the pull's measurements and the reproduction's.
    """
    return pull_and_reproduce(ws, v1, ws.clone(ws.root / "teammate", v1.commit))


def pull_and_reproduce(
    ws: Workspace, v1: DataVersion, mate: Path
) -> tuple[dict[str, Any], dict[str, Any]]:
    """In the teammate's clone ``mate``: ``dvc pull``, then ``dvc repro --force`` from training
    on; what the cache held before, the bytes after the pull, and what the retraining gave."""
    cache = mate / ".dvc" / "cache"
    cached_before = count_files(cache)
    present_before = same_files(file_md5s(mate, list(v1.md5)), v1.md5)
    start = time.perf_counter()
    ws.dvc("pull", repo=mate)
    pulled = {
        "files": len(v1.md5),
        "identical_before": present_before,
        "identical_after": same_files(file_md5s(mate, list(v1.md5)), v1.md5),
        "cache_files_before": cached_before,
        "cache_files_after": count_files(cache),
        "remote_files": count_files(ws.remote),
        "seconds": time.perf_counter() - start,
    }
    start = time.perf_counter()
    # --force: really re-run (not restore from DVC's run cache); from `train` on, because the
    # data stages' outputs are what was just pulled and checked byte for byte.
    ws.dvc("repro", "--force", "--downstream", "train", repo=mate)
    reproduced = {
        "metrics": read_metrics(mate),
        "model_sha256": file_sha256(mate / MODEL_FILE),
        "lock_unchanged": ws.git("status", "--porcelain", repo=mate) == "",
        "seconds": time.perf_counter() - start,
    }
    return pulled, reproduced


def count_files(path: Path) -> int:
    """Files under ``path`` (0 if it does not exist): a DVC cache or remote's size."""
    return sum(1 for p in path.rglob("*") if p.is_file()) if path.exists() else 0
