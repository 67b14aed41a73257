"""What a staged version records, and what a data-only change looks like to the workflow.

Lineage tags: the git commit (and dirty flag) of the code, the md5 of the training data (the
hash DVC uses for a file), and the sha256 of both lock files — ``requirements.lock`` pins the
environment, ``dvc.lock`` pins the data and pipeline outputs.

A data-only change in this repository is a new version of ``data/raw/churn.csv``: its bytes
live in the DVC cache, and git sees only ``dvc.lock``, where the md5 changes. We write that
``dvc.lock`` (in memory, from the real one) and ask the real workflow's path filters whether
that change runs the pipeline — next to a code change and a docs-only change as controls.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

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


def data_only_change(new_md5: str, root: Path | None = None) -> dict[str, Any]:
    """The files a new data version changes, and whether the workflow runs for it; a code
    change and a docs-only change as controls."""
    root = root or code_root()
    before = {name: (root / name).read_text() for name in TRACKED}
    after = dict(before)
    after["dvc.lock"] = lock_with_new_data(before["dvc.lock"], new_md5)
    changed = [name for name in TRACKED if before[name] != after[name]]
    workflow = load_workflow()
    old_md5 = {
        entry["md5"]
        for stage in yaml.safe_load(before["dvc.lock"])["stages"].values()
        for entry in stage.get("outs", [])
        if entry.get("path") == RAW_DATA
    }
    return {
        "changed_files": changed,
        "old_data_md5": sorted(old_md5)[0] if old_md5 else None,
        "new_data_md5": new_md5,
        "triggers": triggered_by(workflow, changed),
        "code_change_triggers": triggered_by(workflow, ["labs/common/model.py"]),
        "docs_change_triggers": triggered_by(workflow, ["README.md", "docs/notes.md"]),
    }
