"""The measurement harness: fresh processes for cold numbers, the serving app over HTTP.

Cold numbers need a process that has imported nothing yet, so each format and each handler
gets one ``python -m labs.packaging.probe`` process, in its own process group, with a timeout,
stopped on Ctrl-C. One process per format measures everything of that format (cold load,
latencies, parity, the planted file), to keep the lab inside its time budget.
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from labs.common.paths import project_root


def run_probes(
    specs: dict[str, dict[str, Any]],
    timeout: float,
    at_once: int = 1,
    meanwhile: Callable[[], None] | None = None,
) -> dict[str, dict[str, Any]]:
    """Run one probe process per spec, ``at_once`` at a time (1 = one after another, the
    honest setting for cold timings; 2 halves the wall time on two idle cores but the
    processes then share the CPU). Every process is in its own group and is stopped on any
    exit — a failure, a timeout or Ctrl-C. ``meanwhile`` runs in this process once the first
    probes are started."""
    from labs.common.processes import stop_process_group
    from labs.common.tracking import OFFLINE_ENV, tracking_uri

    env = {
        **os.environ,
        **OFFLINE_ENV,
        "MLFLOW_TRACKING_URI": tracking_uri(),
        "PYTHONWARNINGS": "ignore",
    }
    pending = list(specs.items())
    running: dict[str, tuple[subprocess.Popen, float]] = {}
    results: dict[str, dict[str, Any]] = {}
    try:
        while pending or running:
            while pending and len(running) < max(at_once, 1):
                name, spec = pending.pop(0)
                process = subprocess.Popen(
                    [sys.executable, "-m", "labs.packaging.probe", json.dumps(spec)],
                    stdout=subprocess.PIPE,
                    stderr=subprocess.PIPE,
                    text=True,
                    env=env,
                    cwd=project_root(),
                    start_new_session=True,
                )
                running[name] = (process, time.monotonic())
            if meanwhile is not None:
                meanwhile, work = None, meanwhile
                work()
            for name, (process, began) in list(running.items()):
                if process.poll() is None:
                    if time.monotonic() - began > timeout:
                        raise RuntimeError(f"probe {name} took more than {timeout:.0f} s")
                    continue
                out, err = process.communicate()
                del running[name]
                lines = out.strip().splitlines()
                if process.returncode != 0 or not lines:
                    tail = "\n".join(err.strip().splitlines()[-8:])
                    raise RuntimeError(f"probe {name} failed:\n{tail}")
                results[name] = json.loads(lines[-1])
            time.sleep(0.02)
    finally:
        for process, _ in running.values():
            stop_process_group(process, grace=5)
    return results


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
    server: Any,
    launched: float,
    one_row_body: str,
    batch_body: str,
    repeats: tuple[int, int],
) -> dict[str, Any]:
    """The project's serving app (a :func:`labs.common.serving.server.serve_in_background`
    process launched at ``launched``): time to ``/ready``, median one-row and batch round
    trips over HTTP, and the batch's probabilities."""
    import httpx

    server.wait_ready()
    ready_s = time.perf_counter() - launched
    headers = {"content-type": "application/json"}
    with httpx.Client(base_url=server.url, timeout=30.0, headers=headers) as client:
        first = client.post("/predict", content=one_row_body)
        first.raise_for_status()
        one, batch, last = [], [], first
        for _ in range(repeats[0]):
            t = time.perf_counter()
            client.post("/predict", content=one_row_body).raise_for_status()
            one.append(time.perf_counter() - t)
        for _ in range(repeats[1]):
            t = time.perf_counter()
            last = client.post("/predict", content=batch_body)
            last.raise_for_status()
            batch.append(time.perf_counter() - t)
    return {
        "ready_s": ready_s,
        "one_row_ms": 1000 * statistics.median(one),
        "batch_ms": 1000 * statistics.median(batch),
        "model_version": first.json()["model_version"],
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
