"""What determines a result, recorded: code, environment, data, params, seed, platform —
and why MLflow's own dataset digest is not enough to identify the data."""

from __future__ import annotations

import hashlib
import platform
from collections.abc import Callable
from pathlib import Path
from typing import Any

from labs.common.results import git_state, library_versions
from labs.common.tracking import file_sha256
from labs.reproducibility.environment import LOCK_FILE
from labs.reproducibility.scratch import (
    lock_outs,
    md5_file,
)


def lineage_tags(root: Path, data_files: dict[str, str], blas: str) -> dict[str, str]:
    """The MLflow tags that pin a run's inputs: git commit and dirty flag, the lock file's
    sha256, each data file's md5 (DVC's hash) and whether ``dvc.lock`` pins those bytes,
    the interpreter, platform, BLAS and key library versions."""
    commit, dirty = git_state(root)
    pinned = lock_outs((root / "dvc.lock").read_text()) if (root / "dvc.lock").exists() else {}
    tags = {
        "git_commit": str(commit),
        "git_dirty": str(dirty).lower(),
        "requirements_lock_sha256": file_sha256(root / LOCK_FILE),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "machine": platform.machine(),
        "blas": blas,
    }
    for role, path in data_files.items():
        md5 = md5_file(root / path)
        tags[f"data.{role}.path"] = path
        tags[f"data.{role}.md5"] = str(md5)
        tags[f"data.{role}.pinned_by_dvc_lock"] = str(pinned.get(path) == md5).lower()
    tags.update({f"version.{k}": v for k, v in library_versions().items()})
    return tags


def mlflow_dataset_digest(frame: Any) -> str:
    """MLflow's digest of a pandas dataset (what ``mlflow.log_input`` records)."""
    import mlflow.data

    return mlflow.data.from_pandas(frame).digest


def digest_blind_spot(
    rows: int, changed_from: int, seed: int, digest: Callable[[Any], str] = mlflow_dataset_digest
) -> dict[str, Any]:
    """Two frames equal in their first ``changed_from`` rows, different after: ``digest``
    (MLflow's dataset digest) against the md5 of their CSV. A control pair differs in row 0."""
    from labs.common.data import make_churn_data

    original = make_churn_data(rows, seed=seed)
    late = original.copy()
    late.loc[changed_from:, "monthly_charges"] += 10.0  # a price change after row N
    early = original.copy()
    early.loc[0, "monthly_charges"] += 10.0

    def md5(frame: Any) -> str:
        return hashlib.md5(frame.to_csv(index=False).encode()).hexdigest()

    return {
        "rows": rows,
        "rows_changed": rows - changed_from,
        "first_changed_row": changed_from,
        "digest_original": digest(original),
        "digest_changed_late": digest(late),
        "digest_changed_row_0": digest(early),
        "md5_original": md5(original),
        "md5_changed_late": md5(late),
    }
