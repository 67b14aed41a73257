"""Experiments: ``dvc exp run -S …`` per hyperparameter setting, then ``dvc exp show``.

DVC keeps an experiment as a hidden git ref (``refs/exps/…``) with its params and metrics, not
as a commit on a branch: trying things does not clutter the history.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import yaml

from labs.versioning.scratch import Workspace
from labs.versioning.versions import METRICS_FILE, DataVersion


def run_experiments(
    ws: Workspace,
    experiments: Mapping[str, Sequence[str]],
    baseline: DataVersion,
    repo: Path | None = None,
    run_one: Callable[[Workspace, Path, str, Sequence[str]], None] | None = None,
) -> dict[str, Any]:
    """``dvc exp run -S …`` per setting (or ``run_one``) on the baseline commit checked out in
    ``repo`` (the scratch clone by default), then ``dvc exp show``."""
    repo = repo or ws.repo

    def git(*args: str) -> str:
        return ws.git(*args, repo=repo).strip()

    head_before = git("rev-parse", "HEAD")
    # Experiments are kept as hidden git refs (refs/exps/…), not as commits on a branch.
    commits_before = git("rev-list", "--count", "--branches", "--tags")
    start = time.perf_counter()
    for name, overrides in experiments.items():
        # An experiment starts from the workspace, and the previous one left its params there.
        git("checkout", "--quiet", "--", "params.yaml", "dvc.lock")
        (run_one or exp_run)(ws, repo, name, overrides)
    seconds = time.perf_counter() - start
    shown = json.loads(ws.dvc("exp", "show", "--json", repo=repo))
    git("checkout", "--quiet", "--", "params.yaml", "dvc.lock")
    # DVC keeps experiment commits under refs/exps/<baseline sha, split 2/38>/<name>.
    refs = git(
        "for-each-ref",
        "--format=%(refname)",
        f"refs/exps/{baseline.commit[:2]}/{baseline.commit[2:]}/",
    )
    return {
        "rows": experiment_rows(shown, baseline.commit),
        "raw": shown,
        "head_unchanged": git("rev-parse", "HEAD") == head_before,
        "commits_unchanged": git("rev-list", "--count", "--branches", "--tags") == commits_before,
        "exp_refs": len(refs.splitlines()),
        "seconds": seconds,
    }


def exp_run(ws: Workspace, repo: Path, name: str, overrides: Sequence[str]) -> None:
    """One experiment: ``dvc exp run --name NAME -S section.key=value …``."""
    args = ["exp", "run", "--name", name]
    for item in overrides:
        args += ["--set-param", str(item)]
    ws.dvc(*args, repo=repo)


def experiment_rows(shown: list[dict[str, Any]], baseline: str) -> list[dict[str, Any]]:
    """Flatten ``dvc exp show --json``: the baseline commit and each of its experiments."""

    def row(rev: dict[str, Any], name: str) -> dict[str, Any]:
        data = rev.get("data") or {}
        params = ((data.get("params") or {}).get("params.yaml") or {}).get("data") or {}
        metrics = ((data.get("metrics") or {}).get(METRICS_FILE) or {}).get("data") or {}
        return {"name": name, "rev": rev["rev"], "params": params, "metrics": metrics}

    rows = []
    for entry in shown:
        if entry.get("rev") != baseline:
            continue
        rows.append(row(entry, "baseline"))
        for exp in entry.get("experiments") or []:
            rev = exp["revs"][0]
            rows.append(row(rev, rev.get("name") or exp.get("name") or rev["rev"][:7]))
    return rows


def setting_applied(params: Mapping[str, Any], override: str) -> bool:
    """Whether ``section.key=value`` is what the experiment's params.yaml holds."""
    key, _, value = override.partition("=")
    return param_value(params, key) == yaml.safe_load(value)


def param_value(params: Mapping[str, Any], dotted: str) -> Any:
    """``params["train"]["C"]`` for ``"train.C"`` (None if absent)."""
    value: Any = params
    for part in dotted.split("."):
        if not isinstance(value, Mapping) or part not in value:
            return None
        value = value[part]
    return value
