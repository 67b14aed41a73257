"""``make mlflow-ui`` in a real browser: each ready lab's experiment lists its run, and the
index's "MLflow run" link opens that run. Slow: the MLflow server takes ~20 s to start."""

from __future__ import annotations

import os
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from labs.common.catalogue import ready_labs
from labs.common.processes import free_port, stop_process_group
from labs.common.results import Claim
from labs.common.tracking import RunRecord, get_or_create_experiment, log_run_record
from labs.index.build import build_index
from tests.index.browser import Browser

pytestmark = [pytest.mark.integration, pytest.mark.slow]

# MLflow 3.17's UI opens every experiment in its GenAI view (traces, sessions, costs; no runs)
# unless the URL (or the remembered choice) selects the classic "Model training" workflow.
CLASSIC = "?workflowType=machine_learning"


@pytest.fixture
def mlflow_ui(repo_root: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """``make mlflow-ui`` on a free port over a throw-away SQLite store."""
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    port = free_port()
    log = (tmp_path / "mlflow-ui.log").open("w")
    server = subprocess.Popen(
        ["make", "-s", "mlflow-ui", f"MLFLOW_PORT={port}"],
        cwd=repo_root, env={**os.environ, "MLFLOW_TRACKING_URI": uri},
        stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
    )  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 180
        while True:
            try:
                if httpx.get(f"{url}/health", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if server.poll() is not None or time.monotonic() > deadline:
                raise AssertionError((tmp_path / "mlflow-ui.log").read_text()[-2000:])
            time.sleep(0.5)
        yield url
    finally:
        stop_process_group(server)


def wait_for_text(browser: Browser, text: str, timeout: float = 90) -> str:
    deadline = time.monotonic() + timeout
    while True:
        body = browser.js("document.body ? document.body.innerText : ''") or ""
        if text in body or time.monotonic() > deadline:
            return body
        time.sleep(0.5)


def test_each_ready_lab_experiment_lists_its_run_in_the_mlflow_ui(
    browser: Browser,
    mlflow_ui: str,
    project: Path,
    write_lab,
) -> None:
    experiments = {}
    for t in ready_labs():
        run_id = log_run_record(t.experiment, RunRecord(f"{t.id}-evidence", {"seed": 7}, {"x": 1}))
        experiments[t.id] = get_or_create_experiment(t.experiment)
        write_lab(t.id, claims=[Claim("ok", "It holds.", True, {"x": 1})],
                  mlflow={"experiment": t.experiment, "run_id": run_id})  # fmt: skip
    index = build_index(mlflow_ui=mlflow_ui)
    for t in ready_labs():
        browser.open(f"{mlflow_ui}/#/experiments/{experiments[t.id]}{CLASSIC}")
        body = wait_for_text(browser, f"{t.id}-evidence")
        assert f"{t.id}-evidence" in body, f"{t.experiment}: {body[:1500]}"
    # The index's link for one lab opens its run page.
    card = next(c for c in index.cards if c.topic.id == "drift")
    assert card.mlflow_url and card.mlflow_url.startswith(f"{mlflow_ui}/#/runs/")
    assert card.mlflow_url.endswith(CLASSIC)
    browser.open(card.mlflow_url)
    body = wait_for_text(browser, "drift-evidence")
    assert "drift-evidence" in body, body[:1500]
