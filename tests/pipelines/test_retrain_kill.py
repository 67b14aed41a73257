"""A retraining run killed by SIGTERM (issue #11, item 6): nothing it started survives it — its
Prefect server included — and its MLflow run ends KILLED. A real `python -m pipelines.retrain`
with no Prefect API configured, so the run starts a temporary server of its own."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path

import mlflow
import psutil
import pytest

from labs.common.processes import stop_process_group

pytestmark = pytest.mark.integration


def _alive(processes: list[psutil.Process]) -> list[psutil.Process]:
    return [p for p in processes if p.is_running() and p.status() != psutil.STATUS_ZOMBIE]


def _group(pgid: int) -> list[psutil.Process]:
    found = []
    for p in psutil.process_iter():
        with contextlib.suppress(psutil.Error):
            if os.getpgid(p.pid) == pgid:
                found.append(p)
    return _alive(found)


def _kill(processes: list[psutil.Process]) -> None:
    for p in processes:
        with contextlib.suppress(psutil.Error):
            p.kill()


def test_sigterm_of_a_run_leaves_no_process_and_a_killed_mlflow_run(sandbox_root: Path) -> None:
    name = f"test-kill-{uuid.uuid4().hex[:8]}"
    env = {k: v for k, v in os.environ.items() if k != "PREFECT_API_URL"}
    process = subprocess.Popen(
        [sys.executable, "-m", "pipelines.retrain", "--month", "2", "--model-name", name],
        cwd=sandbox_root,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,  # its own group: we can list what stays in it
    )
    started: list[psutil.Process] = []
    lines: list[str] = []
    # A run that hangs before it is at work is stopped (its output then ends), not waited for.
    watchdog = threading.Timer(120, stop_process_group, (process, 5))
    watchdog.start()
    try:
        # At work: the flow has checked the batch, so the run's MLflow run exists and the
        # server is up. Everything the run started by then is a descendant of it.
        assert process.stdout is not None
        for line in process.stdout:
            lines.append(line)
            if "valid rows" in line:
                break
        assert process.poll() is None, "the run ended before it was at work:\n" + "".join(lines)
        started = psutil.Process(process.pid).children(recursive=True)
        os.kill(process.pid, signal.SIGTERM)  # the run only, as a scheduler or `kill` does
        with contextlib.suppress(subprocess.TimeoutExpired):
            process.wait(timeout=30)
        deadline = time.monotonic() + 10
        while (_alive(started) or _group(process.pid)) and time.monotonic() < deadline:
            time.sleep(0.2)
        survivors = sorted(
            {f"{p.pid} {' '.join(p.cmdline()[:6])}" for p in _alive(started) + _group(process.pid)}
        )
    finally:
        watchdog.cancel()
        stop_process_group(process, grace=5)
        _kill(_alive(started))  # a server in a group of its own, if the test failed
    lines.append(process.stdout.read())  # to the end: whatever held the pipe is gone now
    output = "".join(lines)
    assert started, f"the run started no process:\n{output[-3000:]}"
    assert not survivors, "outlived the run: " + "; ".join(survivors)
    assert process.returncode == 130, output[-3000:]
    # The store the run used (the session's, from the environment), named explicitly: an
    # earlier test in this worker may have pointed MLflow's global tracking URI elsewhere.
    mlflow.set_tracking_uri(os.environ["MLFLOW_TRACKING_URI"])
    runs = mlflow.search_runs(
        experiment_names=["retraining"], filter_string=f"params.model_name = '{name}'"
    )
    assert list(runs["status"]) == ["KILLED"], list(runs.get("tags.error", []))
