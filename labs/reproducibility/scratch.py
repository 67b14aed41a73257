"""Throw-away places to work in: a temporary directory that is always removed, and commands
(git, DVC, the venv's python) run there with an environment that cannot reach the user's
checkout, in their own process group so a timeout or Ctrl-C stops everything they started."""

from __future__ import annotations

import contextlib
import hashlib
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path

import yaml

from labs.common.processes import stop_process_group

PREFIX = "labs-reproducibility-"


class CommandError(RuntimeError):
    """A command in the scratch failed; the message names it and ends with its output."""


@contextlib.contextmanager
def scratch_dir() -> Iterator[Path]:
    """A temporary directory, removed on exit even when the lab fails."""
    root = Path(tempfile.mkdtemp(prefix=PREFIX))
    try:
        yield root
    finally:
        shutil.rmtree(root, ignore_errors=True)


def scratch_env(root: Path, extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """This environment minus every ``GIT_*`` variable (a hook's ``GIT_DIR`` would point git at
    the user's repository), offline, the venv first on PATH (DVC stages run ``python``) and
    an MLflow file store inside ``root`` (stages log there, never to the user's store)."""
    from labs.common.tracking import OFFLINE_ENV

    env = {k: v for k, v in os.environ.items() if not k.startswith("GIT_")}
    env.update(OFFLINE_ENV)
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    # A file store: a fresh SQLite store would first run its schema migrations (seconds in
    # every stage process), and nobody looks at the scratch's runs.
    env["MLFLOW_TRACKING_URI"] = (root / "mlruns").as_uri()
    env["MLFLOW_ALLOW_FILE_STORE"] = "true"
    env.pop("LABS_ROOT", None)
    env.update(extra or {})
    return env


def run_command(cmd: Sequence[str], cwd: Path, env: Mapping[str, str], timeout_s: float) -> str:
    """Run ``cmd`` in ``cwd``; its stdout, or :class:`CommandError` with the output's tail."""
    proc = subprocess.Popen(
        list(cmd), cwd=cwd, env=dict(env), text=True,
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True,
    )  # fmt: skip
    try:
        out, _ = proc.communicate(timeout=timeout_s)
    except BaseException:  # a timeout or Ctrl-C: stop the command and what it started
        stop_process_group(proc, grace=5)
        raise
    if proc.returncode != 0:
        tail = "\n".join(out.strip().splitlines()[-15:])
        raise CommandError(f"`{' '.join(cmd)}` failed (exit {proc.returncode}) in {cwd}:\n{tail}")
    return out


def dvc_executable() -> str:
    """The venv's ``dvc`` (beside this interpreter), else the one on PATH."""
    beside = Path(sys.executable).with_name("dvc")
    found = str(beside) if beside.exists() else shutil.which("dvc")
    if found is None:
        raise CommandError(f"dvc is not installed next to {sys.executable} nor on PATH")
    return found


def configure_dvc(repo: Path, cache_dir: Path) -> None:
    """DVC settings local to a scratch checkout: its cache, its site cache, no analytics.
    (Written directly: ``dvc config`` costs ~1 s a call; local config wins over global.)"""
    (repo / ".dvc" / "config.local").write_text(
        "[core]\n"
        "    analytics = false\n"
        "    check_update = false\n"
        f"    site_cache_dir = {repo.parent / (repo.name + '-dvc-site')}\n"
        "[cache]\n"
        f"    dir = {cache_dir}\n"
    )


def dvc_cache_dir(repo: Path) -> Path:
    """The DVC cache a checkout uses: ``cache.dir`` from ``.dvc/config.local`` or
    ``.dvc/config`` (relative to ``.dvc/``), else ``.dvc/cache``. Read, not asked: opening
    the repository with DVC would write into the user's ``.dvc/tmp``."""
    import configparser

    for name in ("config.local", "config"):
        path = repo / ".dvc" / name
        if not path.exists():
            continue
        parser = configparser.ConfigParser()
        # DVC indents keys; configparser would read indented lines as continuations.
        parser.read_string("\n".join(line.strip() for line in path.read_text().splitlines()))
        if parser.has_option("cache", "dir"):
            return (repo / ".dvc" / parser.get("cache", "dir")).resolve()
    return repo / ".dvc" / "cache"


def lock_outs(lock_text: str) -> dict[str, str]:
    """Every output ``dvc.lock`` pins → its md5."""
    lock = yaml.safe_load(lock_text)
    return {
        out["path"]: out["md5"]
        for stage in lock["stages"].values()
        for out in stage.get("outs", [])
    }


def md5_file(path: Path) -> str | None:
    """md5 of a file's bytes (DVC's hash of a file), None if it does not exist."""
    return hashlib.md5(path.read_bytes()).hexdigest() if path.is_file() else None
