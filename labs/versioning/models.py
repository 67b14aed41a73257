"""Model versions in the MLflow registry: register with lineage, follow it back, roll back.

A registered version is tagged with where it came from (git commit, data md5, model sha256);
following those tags alone must restore exactly that data and model. The ``champion`` alias
moves only through the audited :func:`labs.common.registry.promote` / ``rollback`` /
``set_alias``, which keep the history MLflow does not.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from labs.common.registration import register_version
from labs.common.registry import (
    CHALLENGER,
    CHAMPION,
    NoPreviousVersionError,
    alias_version,
    missing_lineage,
    promote,
    read_audit_log,
    rollback,
    set_alias,
)
from labs.common.tracking import file_sha256
from labs.versioning.scratch import Workspace
from labs.versioning.versions import (
    METRIC,
    MODEL_FILE,
    TRAIN_DATA,
    DataVersion,
    file_md5s,
    lock_md5,
    lock_outs,
)

if TYPE_CHECKING:
    import pandas as pd
    from mlflow import MlflowClient

EXPERIMENT = "lab-versioning"


def register_model_version(
    client: MlflowClient, name: str, version: DataVersion, model: Any, experiment_id: str
) -> str:
    """Find-or-register ``model`` in a nested run, tagged with where it came from."""
    import mlflow

    tags = {
        # The commit whose dvc.lock pins this model's data and file — the one made after the
        # repro. (HEAD at training time is its parent: it pins the previous data.)
        "git_commit": version.commit,
        "data_md5": version.md5[TRAIN_DATA],  # DVC's content address of the training data
        "data_version": version.label,
        f"holdout_{METRIC}": f"{version.metrics[METRIC]:.6f}",
    }
    with mlflow.start_run(
        run_name=f"model-data-{version.label}", nested=True, experiment_id=experiment_id
    ) as run:
        mlflow.log_params(
            {
                "data_version": version.label,
                "generate.n_rows": version.rows,
                "generate.seed": version.seed,
            }
        )
        mlflow.log_metrics({f"holdout_{k}": v for k, v in version.metrics.items()})
        mlflow.set_tags(tags)
        # register_version adds the model_sha256 tag: the hash of the same bytes DVC stored.
        number, _ = register_version(
            client, name, model, experiment=EXPERIMENT, run_id=run.info.run_id, tags=tags
        )
    return number


def follow_lineage(
    ws: Workspace, client: MlflowClient, name: str, number: str, *, dvc_checkout: bool = True
) -> dict[str, Any]:
    """From a registry version's tags alone: check out its commit and data, compare the bytes.

    Also records what ``git checkout`` alone leaves in the workspace (the data of whatever was
    checked out before), to show why ``dvc checkout`` is the second half of switching versions.
    """
    import time

    registered = client.get_model_version(name, number)
    tags, missing = registered.tags, missing_lineage(registered)
    outs = lock_outs(ws.repo)
    commit = tags.get("git_commit")
    if commit:  # without it there is nothing to go back to: the workspace stays as it is
        ws.git("checkout", "--quiet", commit)
    after_git = file_md5s(ws.repo, outs)
    start = time.perf_counter()
    if commit and dvc_checkout:
        ws.dvc("checkout")
    seconds = time.perf_counter() - start
    after_dvc = file_md5s(ws.repo, outs)
    data_md5 = tags.get("data_md5")
    return {
        "version": number,
        "missing_tags": missing,
        "commit": commit,
        "lock_pins_data": bool(data_md5) and lock_md5(ws.repo, TRAIN_DATA) == data_md5,
        "data_matches": bool(data_md5) and after_dvc[TRAIN_DATA] == data_md5,
        "model_matches": file_sha256(ws.repo / MODEL_FILE) == tags.get("model_sha256"),
        "after_git_checkout": after_git,
        "after_dvc_checkout": after_dvc,
        "dvc_checkout_s": seconds,
    }


def predict(model_uri: str, x: pd.DataFrame) -> Any:
    """Churn probabilities from a registry model (``models:/name@alias`` or ``/version``)."""
    from labs.common.tracking import load_sklearn_model

    return load_sklearn_model(model_uri).predict_proba(x)[:, 1]


class AuditedAliases:
    """How the lab moves aliases: the project's audited registry functions."""

    promote = staticmethod(promote)
    set_alias = staticmethod(set_alias)
    rollback = staticmethod(rollback)


def demonstrate_rollback(
    client: MlflowClient,
    name: str,
    numbers: Mapping[str, str],
    x: pd.DataFrame,
    audit_log: Path,
    aliases: Any = AuditedAliases,
) -> dict[str, Any]:
    """v1 → champion; v2 → challenger, promoted; roll back. Predictions via the alias each time.

    Then one rollback too many: v1 was the first champion of this (fresh) model, so there is
    nowhere to go back to, and the registry must refuse and change nothing. ``aliases`` holds
    the ``promote`` / ``set_alias`` / ``rollback`` that move them.
    """
    uri = f"models:/{name}@{CHAMPION}"
    logged_before = len(read_audit_log(audit_log))
    aliases.promote(client, name, numbers["v1"], reason="data v1: first model", audit_log=audit_log)
    before = predict(uri, x)
    aliases.set_alias(
        client, name, CHALLENGER, numbers["v2"], reason="retrained on data v2", audit_log=audit_log
    )
    aliases.promote(
        client, name, numbers["v2"], reason="challenger on data v2", audit_log=audit_log
    )
    promoted = predict(uri, x)
    early = _refusal(aliases, client, name, "v2 rejected after release", audit_log)
    after = predict(uri, x)
    champion_after = alias_version(client, name, CHAMPION)
    moves = read_audit_log(audit_log)[logged_before:]
    refusal = _refusal(aliases, client, name, "one rollback too many", audit_log)
    return {
        "first_rollback_refused": early,
        "versions": dict(numbers),
        "champion_after": champion_after,
        "max_diff_promoted": float(abs(promoted - before).max()),
        "max_diff_rolled_back": float(abs(after - before).max()),
        "rows": len(x),
        "moves": moves,
        "refusal": refusal,
        "champion_after_refusal": alias_version(client, name, CHAMPION),
        "moves_after_refusal": len(read_audit_log(audit_log)) - logged_before,
    }


def _refusal(aliases: Any, client: MlflowClient, name: str, reason: str, audit_log: Path) -> str:
    """Roll back; the refusal's message if the registry refused ("" if it moved)."""
    try:
        aliases.rollback(client, name, reason=reason, audit_log=audit_log)
    except NoPreviousVersionError as err:
        return str(err)
    return ""
