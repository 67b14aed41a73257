"""The measurement harness: fresh processes for cold numbers, the serving app over HTTP.

Cold numbers need a process that has imported nothing yet, so each format and each handler
gets one ``python -m labs.packaging.probe`` process (plain ``subprocess.run`` with a timeout;
on Ctrl-C ``subprocess.run`` kills the child before re-raising). One process per format
measures everything of that format, to keep the lab inside its time budget.
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

from labs.common.paths import project_root


def run_probe(spec: dict[str, Any], timeout: float) -> dict[str, Any]:
    """Run one probe process and return its JSON result (its stderr tail on failure)."""
    from labs.common.tracking import OFFLINE_ENV, tracking_uri

    env = {
        **os.environ,
        **OFFLINE_ENV,
        "MLFLOW_TRACKING_URI": tracking_uri(),
        "PYTHONWARNINGS": "ignore",
    }
    done = subprocess.run(
        [sys.executable, "-m", "labs.packaging.probe", json.dumps(spec)],
        capture_output=True,
        text=True,
        timeout=timeout,
        env=env,
        cwd=project_root(),
    )
    lines = done.stdout.strip().splitlines()
    if done.returncode != 0 or not lines:
        tail = "\n".join(done.stderr.strip().splitlines()[-8:])
        raise RuntimeError(f"probe {spec.get('format') or spec.get('kind')} failed:\n{tail}")
    return json.loads(lines[-1])


def parity(reference: np.ndarray, other: np.ndarray, threshold: float = 0.5) -> dict[str, Any]:
    """max |Δp| and label flips of ``other`` against the in-memory model's ``reference``."""
    other = np.asarray(other, dtype=float)
    if other.shape != reference.shape:
        raise ValueError(f"{other.shape} predictions for {reference.shape} reference rows")
    return {
        "max_abs_dp": float(np.max(np.abs(other - reference))),
        "label_flips": int(np.sum((other >= threshold) != (reference >= threshold))),
        "rows": int(len(reference)),
    }


def measure_rest(
    model_uri: str,
    one_row_body: str,
    batch_body: str,
    repeats: tuple[int, int],
    work_dir: Path,
) -> dict[str, Any]:
    """The project's serving app in its own process (labs.common.serving): time to ``/ready``
    from launch, median one-row and batch round trips, and the batch's probabilities."""
    import httpx

    from labs.common.serving.server import serve_in_background

    started = time.perf_counter()
    with serve_in_background(
        model_uri,
        log_path=work_dir / "rest-predictions.sqlite",
        server_log=work_dir / "rest-server.log",
    ) as server:
        ready_s = time.perf_counter() - started
        headers = {"content-type": "application/json"}
        with httpx.Client(base_url=server.url, timeout=30.0, headers=headers) as client:
            first = client.post("/predict", content=one_row_body)
            first.raise_for_status()
            one, batch, last = [], [], None
            for _ in range(repeats[0]):
                t = time.perf_counter()
                client.post("/predict", content=one_row_body).raise_for_status()
                one.append(time.perf_counter() - t)
            for _ in range(repeats[1]):
                t = time.perf_counter()
                last = client.post("/predict", content=batch_body)
                last.raise_for_status()
                batch.append(time.perf_counter() - t)
            assert last is not None
            info = first.json()
    return {
        "ready_s": ready_s,
        "one_row_ms": 1000 * statistics.median(one),
        "batch_ms": 1000 * statistics.median(batch),
        "model_version": info["model_version"],
        "proba": last.json()["churn_probability"],
    }


def onnx_in_process(model: Any, path: Path, columns: dict[str, np.ndarray]) -> np.ndarray:
    """p(churn) of the ONNX file at ``path`` in this process (parity only, no timing)."""
    import onnxruntime

    from labs.packaging.formats import onnx_feed

    session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return session.run(["probabilities"], onnx_feed(columns))[0][:, 1].astype(float)


def directory_bytes(path: Path) -> int:
    """Bytes of a file, or of every file under a directory (an MLflow model is a folder)."""
    if path.is_file():
        return path.stat().st_size
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())
