"""Model versions keyed by their bytes: the same model always maps to the same registered
version, also when two processes register it at the same moment.

Aliases and their audit trail live in :mod:`labs.common.registry`; this module only finds or
creates versions and records the hashes that every later load verifies.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from labs.common.registry import SHA_TAG, registry_lock

if TYPE_CHECKING:  # mlflow is heavy; callers pass a client they already have
    from mlflow import MlflowClient


def find_version(client: MlflowClient, name: str, sha: str) -> str | None:
    """The newest version of ``name`` registered for exactly these model bytes, or None."""
    from mlflow.exceptions import MlflowException

    try:
        found = client.search_model_versions(f"name='{name}' and tags.{SHA_TAG}='{sha}'")
    except MlflowException:  # the registered model does not exist yet
        return None
    return str(max(int(v.version) for v in found)) if found else None


def register_version(
    client: MlflowClient,
    name: str,
    model: Any,
    *,
    experiment: str,
    run_name: str = "register",
    run_id: str | None = None,
    tags: Mapping[str, str] | None = None,
    signature: Any = None,
) -> tuple[str, bool]:
    """Find-or-register ``model`` as a version of ``name``, keyed by the sha256 of its bytes.

    Returns ``(version, created)``. The same bytes always map to the same version, also when
    two processes register at the same moment: search and registration happen under
    :func:`~labs.common.registry.registry_lock`, so the second finds the first's version instead
    of adding a duplicate. The model is logged into run ``run_id`` if given, else into a new
    run of ``experiment``; ``tags`` (lineage) are set on a new version.
    """
    import mlflow

    from labs.common.tracking import log_sklearn_model, model_sha256, start_run

    sha = model_sha256(model)
    with registry_lock(name):
        version = find_version(client, name, sha)
        if version is not None:
            _record_artifact_sha(client, name, version)
            return version, False
        active = mlflow.active_run()
        if run_id is not None and active is not None and active.info.run_id == run_id:
            info = log_sklearn_model(model, registered_model_name=name, signature=signature)
        elif run_id is not None:
            # Into the caller's run without resuming it: leaving a resumed run's ``with`` ends
            # it FINISHED while its owner is still at work, and a kill after that left a run
            # that never finished marked FINISHED. The logged model goes to the process's
            # active experiment (global state): make it the run's own.
            mlflow.set_experiment(experiment_id=client.get_run(run_id).info.experiment_id)
            info = log_sklearn_model(
                model, registered_model_name=name, signature=signature, run_id=run_id
            )
        else:
            with start_run(experiment, run_name, {SHA_TAG: sha}):
                info = log_sklearn_model(model, registered_model_name=name, signature=signature)
        version = str(info.registered_model_version)
        for key, value in {**(tags or {}), SHA_TAG: sha}.items():
            client.set_model_version_tag(name, version, key, value)
    return version, True


def _record_artifact_sha(client: MlflowClient, name: str, version: str) -> None:
    """A version registered before artifact hashes were recorded gets one now (trust on first
    use); from then on every load verifies the bytes against it."""
    from labs.common.tracking import ARTIFACT_SHA_TAG, file_sha256, logged_model_file

    mv = client.get_model_version(name, version)
    if not mv.tags.get(ARTIFACT_SHA_TAG):
        sha = file_sha256(logged_model_file(f"models:/{name}/{version}"))
        client.set_model_version_tag(name, version, ARTIFACT_SHA_TAG, sha)
