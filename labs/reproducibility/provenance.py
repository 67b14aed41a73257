"""What determines a result, recorded: code, environment, data, params, seed, platform —
and why MLflow's own dataset digest is not enough to identify the data."""

from __future__ import annotations

import hashlib
import platform
import shutil
import subprocess
import sys
from importlib import metadata
from pathlib import Path
from typing import Any

from labs.common.results import git_state, library_versions
from labs.common.tracking import file_sha256
from labs.reproducibility.scratch import (
    CommandError,
    lock_outs,
    md5_file,
    run_command,
    scratch_dir,
    scratch_env,
)

LOCK_FILE = "requirements.lock"


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


def digest_blind_spot(rows: int, changed_from: int, seed: int) -> dict[str, Any]:
    """Two frames equal in their first ``changed_from`` rows, different after: MLflow's
    dataset digest (``mlflow.data.from_pandas(...).digest``) against the md5 of their CSV.
    A control pair differs in row 0."""
    import mlflow.data

    from labs.common.data import make_churn_data

    original = make_churn_data(rows, seed=seed)
    late = original.copy()
    late.loc[changed_from:, "monthly_charges"] += 10.0  # a price change after row N
    early = original.copy()
    early.loc[0, "monthly_charges"] += 10.0

    def digest(frame: Any) -> str:
        return mlflow.data.from_pandas(frame).digest

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


def installed_matches_lock(root: Path) -> dict[str, Any]:
    """Every package the lock pins for this interpreter (markers evaluated) against the
    installed version."""
    from packaging.markers import Marker
    from packaging.requirements import Requirement

    pinned: dict[str, str] = {}
    for line in (root / LOCK_FILE).read_text().splitlines():
        if not line or line[0] in " #-" or "==" not in line:
            continue
        req = Requirement(line.rstrip(" \\"))
        if req.marker is None or Marker(str(req.marker)).evaluate():
            pinned[req.name] = next(iter(req.specifier)).version
    mismatched = []
    for name, version in sorted(pinned.items()):
        try:
            installed = metadata.version(name)
        except metadata.PackageNotFoundError:
            installed = None
        if installed != version:
            mismatched.append(f"{name}: lock {version}, installed {installed}")
    return {"packages_pinned": len(pinned), "mismatched": mismatched}


def recompile_lock(root: Path, timeout_s: float) -> dict[str, Any]:
    """Re-resolve ``requirements.lock`` with ``uv pip compile --universal`` — offline, from
    uv's cache — exactly as ``make lock`` does, and compare bytes. ``None`` verdict if uv is
    missing or cannot resolve offline (the lock's sha256 is then all we can record)."""
    uv = shutil.which("uv") or _beside_interpreter("uv") or _bootstrap_uv(root)
    result: dict[str, Any] = {"uv": uv is not None, "reproduced": None, "reason": ""}
    if uv is None:
        result["reason"] = "uv not found"
        return result
    with scratch_dir() as tmp:
        # The same relative paths as `make lock`, in a copy: uv writes the input's path into
        # the lock's comments, and the user's checkout is not written. Like `make lock`, uv
        # starts from the existing lock (its pins are uv's preferences): without it, an offline
        # resolve picks whatever happens to be in the cache and "differs" for no reason.
        shutil.copy(root / "pyproject.toml", tmp / "pyproject.toml")
        shutil.copy(root / LOCK_FILE, tmp / LOCK_FILE)
        cmd = [
            uv, "pip", "compile", "pyproject.toml", "--extra", "dev", "--universal",
            "--generate-hashes", "--no-header", "--python-version", "3.11", "--quiet",
            "--offline", "-o", "requirements.lock",
        ]  # fmt: skip
        env = scratch_env(tmp, {"UV_PYTHON_DOWNLOADS": "never", "UV_OFFLINE": "1"})
        try:
            run_command(cmd, tmp, env, timeout_s)
        except (CommandError, subprocess.TimeoutExpired, OSError) as err:
            result["reason"] = f"uv could not resolve offline: {str(err).splitlines()[0]}"
            return result
        result["reproduced"] = (tmp / LOCK_FILE).read_bytes() == (root / LOCK_FILE).read_bytes()
    return result


def _beside_interpreter(name: str) -> str | None:
    path = Path(sys.executable).with_name(name)
    return str(path) if path.exists() else None


def _bootstrap_uv(root: Path) -> str | None:
    path = root / ".uv-bootstrap" / "bin" / "uv"
    return str(path) if path.exists() else None
