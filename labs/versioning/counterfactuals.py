"""The versioning lab's counterfactuals: the registry used raw (no lock, no lineage, no audit)
and git habits applied to data — each run through the lab's own ``run()`` (``python -m
labs.versioning --counterfactual NAME``; ``--audit`` runs them all). Each breaks several
claims at once: the lab's run is DVC- and MLflow-heavy, and the audit runs it once per
counterfactual."""

from __future__ import annotations

import shutil
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from labs.common.counterfactuals import Counterfactual, LabCounterfactuals
from labs.common.registry import CHAMPION, SHA_TAG, alias_version
from labs.versioning.experiments import run_experiments
from labs.versioning.lab import VersioningParams, run
from labs.versioning.models import EXPERIMENT, follow_lineage
from labs.versioning.scratch import Workspace
from labs.versioning.versions import (
    DataVersion,
    commit_data_version,
    pull_and_reproduce,
    set_generate_params,
    set_params,
)

# --- the registry without its guards --------------------------------------------------------


def register_without_lock(
    client: Any, name: str, model: Any, *, experiment: str, run_name: str = "register", **_: Any
) -> tuple[str, bool]:
    """Find-or-register with the search and the registration not under one lock (no
    compare-and-set): two processes holding the same bytes can both find nothing."""
    from labs.common.registration import find_version
    from labs.common.tracking import log_sklearn_model, model_sha256, start_run

    sha = model_sha256(model)
    version = find_version(client, name, sha)
    if version is not None:
        return version, False
    with start_run(experiment, run_name, {SHA_TAG: sha}):
        info = log_sklearn_model(model, registered_model_name=name)
    version = str(info.registered_model_version)
    client.set_model_version_tag(name, version, SHA_TAG, sha)
    return version, True


def register_without_lineage(
    client: Any, name: str, version: DataVersion, model: Any, experiment_id: str
) -> str:
    """The lab's models registered from their training run with no lineage tags (no git
    commit, no data md5): nothing leads back to the data."""
    import mlflow

    from labs.common.registration import register_version

    with mlflow.start_run(
        run_name=f"model-data-{version.label}", nested=True, experiment_id=experiment_id
    ) as run:
        number, _ = register_version(
            client, name, model, experiment=EXPERIMENT, run_id=run.info.run_id
        )
    return number


class RawAliases:
    """Aliases moved with ``MlflowClient`` directly: no audit line, and a rollback goes to the
    version number below the champion (or removes the alias when there is none)."""

    @staticmethod
    def promote(client: Any, name: str, version: str, **_: Any) -> None:
        client.set_registered_model_alias(name, CHAMPION, version)

    @staticmethod
    def set_alias(client: Any, name: str, alias: str, version: str, **_: Any) -> None:
        client.set_registered_model_alias(name, alias, version)

    @staticmethod
    def rollback(client: Any, name: str, **_: Any) -> None:
        below = int(alias_version(client, name, CHAMPION) or 0) - 1
        if below >= 1:
            client.set_registered_model_alias(name, CHAMPION, str(below))
        else:
            client.delete_registered_model_alias(name, CHAMPION)


# --- git habits in place of DVC's -----------------------------------------------------------


def follow_with_git_only(ws: Workspace, client: Any, name: str, number: str) -> dict[str, Any]:
    """Switch to a registered version's commit with ``git checkout`` alone (no ``dvc checkout``)."""
    return follow_lineage(ws, client, name, number, dvc_checkout=False)


def commit_experiment(ws: Workspace, repo: Path, name: str, overrides: Sequence[str]) -> None:
    """An experiment as a commit on the branch: edit params.yaml, ``dvc repro``, commit."""
    for item in overrides:
        key, _, value = str(item).partition("=")
        section, _, param = key.partition(".")
        set_params(repo / "params.yaml", section, {param: value})
    ws.dvc("repro", repo=repo)
    ws.git("add", "params.yaml", "dvc.lock", repo=repo)
    ws.git("commit", "--quiet", "-m", f"experiment {name}", repo=repo)


def experiments_as_commits(ws: Workspace, experiments: Any, baseline: DataVersion, repo: Path):
    """Each experiment committed on the branch instead of ``dvc exp run``."""
    return run_experiments(ws, experiments, baseline, repo=repo, run_one=commit_experiment)


def teammate_by_hand(ws: Workspace, v1: DataVersion) -> tuple[dict, dict]:
    """The teammate fills the DVC cache by copying the shared folder by hand before ``dvc
    pull`` (so the pull proves nothing about the remote), and reproduces v1 with an
    uncommitted params.yaml edit (``train.C``: 1.0 → 0.5): what ran is not what was committed."""
    mate = ws.clone(ws.root / "teammate", v1.commit)
    shutil.copytree(ws.remote, mate / ".dvc" / "cache", dirs_exist_ok=True)
    set_params(mate / "params.yaml", "train", {"C": 0.5})
    return pull_and_reproduce(ws, v1, mate)


def commit_without_repro(ws: Workspace, label: str, rows: int, seed: int) -> DataVersion:
    """Data "v2": params.yaml edited and committed, the pipeline never run."""
    set_generate_params(ws.repo / "params.yaml", rows, seed)
    return commit_data_version(ws, label, rows, seed, 0.0)


# --- the counterfactuals --------------------------------------------------------------------

REGISTRY = Counterfactual(
    "registry-used-raw",
    "no lock, no lineage tags, aliases moved with the raw client",
    (
        "concurrent_registrations_safe",
        "lineage_complete",
        "rollback_refused_without_previous",
        "alias_moves_audited",
    ),  # fmt: skip
    "The registry is used without its guards: writers search and register without holding the "
    "lock (no compare-and-set), models are registered without their git commit and data md5, "
    "and aliases are set with MlflowClient directly — no audit line, and 'previous' means the "
    "version number below, so a rollback past the first champion silently removes it.",
    components={
        "register_with": register_without_lock,
        "register_model": register_without_lineage,
        "aliases": RawAliases,
    },
)
GIT_HABITS = Counterfactual(
    "git-habits-for-data",
    "commit without dvc repro, git checkout alone, experiments as commits, data copied by hand",
    (
        "data_versions_distinct",
        "data_restored_identical",
        "metric_reproduced_exactly",
        "remote_roundtrip_identical",
        "experiments_tracked",
        "rollback_restores_predictions",
    ),  # fmt: skip
    "Data is handled like code: v2's params are committed without running the pipeline (so "
    "'v2' is v1's data and model, and rolling back from it changes nothing), a version is "
    "switched with `git checkout` alone, each experiment is a commit on the branch, and the "
    "teammate fills the cache by hand and reproduces with an uncommitted params edit.",
    components={
        "build_new_version": commit_without_repro,
        "follow": follow_with_git_only,
        "experiment": experiments_as_commits,
        "teammate": teammate_by_hand,
    },
)

COUNTERFACTUALS = LabCounterfactuals(
    "versioning",
    "versioning",
    VersioningParams,
    run,
    (REGISTRY, GIT_HABITS),
    # Small data and one experiment that re-runs only `evaluate`: DVC's process start-ups,
    # not the rows, take the time.
    audit_params={
        "v1_rows": 600,
        "v2_rows": 1200,
        "experiments": {"threshold-low": ["evaluate.threshold=0.3"]},
    },
)
