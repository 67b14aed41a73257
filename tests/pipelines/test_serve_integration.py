"""A real Prefect server on a free port, the served deployment, and a CLI-triggered run."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import mlflow
import pytest

from labs.common.processes import free_port
from labs.common.tracking import configure_tracking
from pipelines.local import LocalPrefect, running

pytestmark = [pytest.mark.integration, pytest.mark.slow]


def published_decisions(api_url: str) -> list[str]:
    """The Markdown of every ``retrain-decision`` artifact on the server at ``api_url``."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterKey
    from prefect.settings import PREFECT_API_URL, temporary_settings

    from pipelines.retrain import ARTIFACT_KEY

    with temporary_settings({PREFECT_API_URL: api_url}), get_client(sync_client=True) as client:
        found = client.read_artifacts(
            artifact_filter=ArtifactFilter(key=ArtifactFilterKey(any_=[ARTIFACT_KEY]))
        )
    return [a.data for a in found]


def test_deployment_run_completes_through_a_real_server(tmp_path: Path, sandbox_root: Path) -> None:
    local = LocalPrefect(home=tmp_path / "prefect", port=free_port())
    name = "test-served-model"
    # The worker inherits the test's MLflow store and sandbox root; `running` stops both
    # processes (by process group) even if an assertion below fails.
    with running(local) as server:
        run = subprocess.run(
            [
                str(Path(sys.executable).parent / "prefect"),
                "deployment",
                "run",
                "retrain/retrain",
                "--param",
                f"model_name={name}",
                "--watch",
                "--watch-timeout",
                "240",
            ],
            env=server.env(),
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert run.returncode == 0, run.stdout[-2000:] + run.stderr[-2000:]
        assert "Completed" in run.stdout
        (decision,) = published_decisions(server.api_url)
        assert decision.startswith("## Retraining decision: **promoted** → champion v1")
        bad = subprocess.run(
            [
                str(Path(sys.executable).parent / "prefect"),
                "deployment",
                "run",
                "retrain/retrain",
                "--param",
                "margin=-1",
            ],
            env=server.env(),
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert bad.returncode != 0 and "margin" in (bad.stdout + bad.stderr)
    assert not (local.home / "server.pid").exists() and not (local.home / "serve.pid").exists()
    alive = subprocess.run(["pgrep", "-f", "--", f"--port {local.port}"], capture_output=True)
    assert alive.returncode == 1  # nothing left listening on the test's port
    # The run registered the first champion of a fresh model in the test's MLflow store.
    configure_tracking()  # the session's store, whatever another test pointed MLflow at
    aliases = mlflow.MlflowClient().get_registered_model(name).aliases
    assert str(aliases["champion"]) == "1"
