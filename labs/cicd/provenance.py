"""What a staged version records, and what a data-only change looks like to the workflow.

Lineage tags: the git commit (and dirty flag) of the code, the md5 of the training data (the
hash DVC uses for a file), and the sha256 of both lock files — ``requirements.lock`` pins the
environment, ``dvc.lock`` pins the data and pipeline outputs.

A data-only change in this repository is a new version of ``data/raw/churn.csv``: its bytes
live in the DVC cache (git ignores the file), and git sees only ``dvc.lock``, where the md5
changes. :func:`data_change` makes that change for real in a scratch git repository — data
v1 committed, then data v2 — and reads what changed with ``git diff --name-only`` (what a CI
service's path filter sees), then asks the workflow's trigger whether that runs the pipeline,
next to a docs-only and a code commit as controls. The pipeline then reads the data version
``dvc.lock`` pins, checking its md5.
"""

from __future__ import annotations

import hashlib
import shutil
import subprocess
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import pandas as pd
import yaml

from labs.cicd.workflow import code_root, load_workflow, triggered_by
from labs.common.results import git_state
from labs.common.tracking import file_sha256

RAW_DATA = "data/raw/churn.csv"
TRACKED = ("dvc.lock", "dvc.yaml", "params.yaml")


def md5_file(path: Path) -> str:
    """The md5 of a file's bytes (what ``dvc.lock`` records for it)."""
    return hashlib.md5(Path(path).read_bytes()).hexdigest()


def lineage_tags(data_file: Path, root: Path | None = None) -> dict[str, str]:
    """Tags that pin a registered version to its code, data and environment."""
    root = root or code_root()
    commit, dirty = git_state(root)
    return {
        "git_commit": str(commit),
        "git_dirty": str(dirty).lower(),
        "data_md5": md5_file(data_file),
        "requirements_lock_sha256": file_sha256(root / "requirements.lock"),
        "dvc_lock_sha256": file_sha256(root / "dvc.lock"),
    }


def lock_with_new_data(lock_text: str, new_md5: str, path: str = RAW_DATA) -> str:
    """``dvc.lock`` after ``path`` got new bytes: every entry of that path carries ``new_md5``."""
    lock = yaml.safe_load(lock_text)
    for stage in lock["stages"].values():
        for entry in [*stage.get("deps", []), *stage.get("outs", [])]:
            if entry.get("path") == path:
                entry["md5"] = new_md5
    return yaml.safe_dump(lock, sort_keys=False)


def workflow_trigger(changed: Iterable[str]) -> dict[str, bool]:
    """Per event, whether the project's workflow (its ``paths:`` filters) runs for a change."""
    return triggered_by(load_workflow(), changed)


def _git(repo: Path, *args: str) -> str:
    identity = ("-c", "user.name=lab-cicd", "-c", "user.email=lab-cicd@localhost")
    proc = subprocess.run(
        ["git", "-C", str(repo), *identity, *args],
        capture_output=True, text=True, timeout=60, check=True,
    )  # fmt: skip
    return proc.stdout.strip()


def _commit(repo: Path, message: str) -> str:
    _git(repo, "add", "-A")
    _git(repo, "commit", "-q", "--no-verify", "-m", message)
    return _git(repo, "rev-parse", "HEAD")


def changed_files(repo: Path, before: str, after: str) -> list[str]:
    """The files git reports as changed between two commits (what a path filter sees)."""
    return sorted(_git(repo, "diff", "--name-only", before, after).splitlines())


def pinned_md5(lock_text: str, path: str = RAW_DATA) -> str | None:
    """The md5 ``dvc.lock`` records for ``path`` (as an output of a stage)."""
    for stage in yaml.safe_load(lock_text)["stages"].values():
        for entry in stage.get("outs", []):
            if entry.get("path") == path:
                return str(entry["md5"])
    return None


def data_change(
    repo: Path,
    v1: pd.DataFrame,
    v2: pd.DataFrame,
    trigger: Callable[[Iterable[str]], dict[str, bool]] = workflow_trigger,
) -> dict[str, Any]:
    """Commit data v1, then data v2, in a scratch git repository at ``repo`` (dvc.lock, the
    params and the README copied from this one, the data file git-ignored as DVC leaves it);
    then a docs-only and a code commit as controls. Returns what git saw change, whether
    ``trigger`` runs the pipeline for each, and the data file the pipeline reads (its md5
    checked against the one ``dvc.lock`` pins), or ``None`` if nothing ran."""
    root = code_root()
    if repo.exists():
        shutil.rmtree(repo)
    (repo / "data" / "raw").mkdir(parents=True)
    _git(repo, "init", "-q")
    for name in TRACKED:
        shutil.copyfile(root / name, repo / name)
    (repo / "README.md").write_text("# churn model\n")
    (repo / ".gitignore").write_text(f"/{RAW_DATA}\n")
    lock = (root / "dvc.lock").read_text()
    data_file = repo / RAW_DATA
    commits = []
    for table in (v1, v2):
        table.to_csv(data_file, index=False)
        (repo / "dvc.lock").write_text(lock_with_new_data(lock, md5_file(data_file)))
        commits.append(_commit(repo, f"data: {len(table)} rows"))
    (repo / "README.md").write_text("# churn model\n\nHow to run it.\n")
    commits.append(_commit(repo, "docs"))
    (repo / "labs").mkdir()
    (repo / "labs" / "features.py").write_text("FEATURES = ['support_calls']\n")
    commits.append(_commit(repo, "code"))
    changed = changed_files(repo, commits[0], commits[1])
    triggers = trigger(changed)
    pinned = pinned_md5(_git(repo, "show", f"{commits[1]}:dvc.lock"))
    ran = any(triggers.values())
    return {
        "changed_files": changed,
        "old_data_md5": pinned_md5(_git(repo, "show", f"{commits[0]}:dvc.lock")),
        "new_data_md5": pinned,
        "data_md5_read": md5_file(data_file) if ran else None,
        "data_file": data_file if ran and md5_file(data_file) == pinned else None,
        "triggers": triggers,
        "docs_change": changed_files(repo, commits[1], commits[2]),
        "docs_change_triggers": trigger(changed_files(repo, commits[1], commits[2])),
        "code_change_triggers": trigger(changed_files(repo, commits[2], commits[3])),
    }
