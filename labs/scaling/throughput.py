"""Measuring throughput: in-process batch curves, HTTP curves and closed-loop load against a
server, and starting the lab's own servers (N uvicorn workers; the micro-batching demo).

Every HTTP measurement goes through the project's load replayer (:mod:`labs.common.replay`):
N concurrent clients, each sending its next request when the previous one is answered. Bodies
are encoded once, so the clients' own JSON work does not count against the server. The
number of requests of a point is calibrated from a short warm-up so that each point lasts
about ``seconds``, whatever the machine's speed.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import sys
import time
from collections.abc import Callable, Hashable, Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from labs.common.data import FEATURES
from labs.common.paths import project_root
from labs.common.processes import HOST, ServedProcess, serve_process
from labs.common.replay import Request, replay


def rows_json(frame: pd.DataFrame, n: int) -> bytes:
    """``{"rows": [...]}`` for the first ``n`` customers of ``frame``, as the API expects."""
    rows = frame[list(FEATURES)].iloc[:n].to_dict("records")
    plain = [{k: v.item() if hasattr(v, "item") else v for k, v in r.items()} for r in rows]
    return json.dumps({"rows": plain}).encode()


ScoreRows = Callable[[Any, pd.DataFrame], np.ndarray]


def predict_in_one_call(model: Any, frame: pd.DataFrame) -> np.ndarray:
    """Churn probabilities of every row of ``frame``: one ``predict_proba`` call for the batch."""
    return model.predict_proba(frame)[:, 1]


def dotted(obj: Any) -> str:
    """``module:qualname`` of a module-level function, so another process can import it."""
    return f"{obj.__module__}:{obj.__qualname__}"


def undotted(path: str) -> Any:
    """The object a :func:`dotted` path names."""
    import importlib

    module, _, name = path.partition(":")
    return getattr(importlib.import_module(module), name)


def inprocess_curve(
    model: Any,
    frame: pd.DataFrame,
    batch_sizes: Sequence[int],
    seconds: float,
    score_rows: ScoreRows = predict_in_one_call,
) -> list[dict[str, float]]:
    """Rows/s of ``score_rows`` called on batches of each size (size 1 = row by row)."""
    x = frame[list(FEATURES)]
    out = []
    for size in batch_sizes:
        batch = x.iloc[:size]
        score_rows(model, batch)  # warm
        calls, start = 0, time.perf_counter()
        while calls < 3 or time.perf_counter() - start < seconds:
            score_rows(model, batch)
            calls += 1
        wall = time.perf_counter() - start
        out.append(
            {"batch": size, "rows_per_s": calls * size / wall, "ms_per_call": wall / calls * 1e3}
        )
    return out


def load(
    url: str,
    content: bytes,
    rows: int,
    *,
    clients: int,
    seconds: float,
    path: str = "/predict",
) -> dict[str, float]:
    """Closed-loop load: ``clients`` concurrent clients send ``content`` for about ``seconds``.

    Returns requests/s, rows/s, latency percentiles (ms) and the share of non-200 answers."""
    request = Request(content=content, path=path, rows=rows)
    warm = replay(url, [request] * (3 * clients), clients=clients, keep_responses=False)
    # In a closed loop each client completes one request per latency: calibrate from it.
    latency = float(np.median([r.latency_s for r in warm.records]))
    n = int(np.clip(seconds * clients / max(latency, 1e-5), 3 * clients, 20000))
    result = replay(url, [request] * n, clients=clients, keep_responses=False)
    # The span of the requests themselves (not the client's set-up): first start, last end.
    span = max(r.finished_at for r in result.records) - min(r.started_at for r in result.records)
    latencies = np.array([r.latency_s for r in result.records]) * 1e3
    ok = sum(r.status == 200 for r in result.records)
    return {
        "clients": clients,
        "batch": rows,
        "requests": len(result.records),
        "requests_per_s": len(result.records) / span,
        "rows_per_s": len(result.records) * rows / span,
        "p50_ms": float(np.percentile(latencies, 50)),
        "p95_ms": float(np.percentile(latencies, 95)),
        "error_share": 1 - ok / len(result.records),
    }


def http_curve(
    url: str, frame: pd.DataFrame, batch_sizes: Sequence[int], seconds: float
) -> list[dict[str, float]]:
    """Rows/s over HTTP, one client, requests of each batch size."""
    return [load(url, rows_json(frame, b), b, clients=1, seconds=seconds) for b in batch_sizes]


@contextlib.contextmanager
def workers_server(
    model_file: Path,
    workers: int,
    out_dir: Path,
    *,
    log_level: str = "info",
    app_factory: Callable[[], Any] | None = None,
) -> Iterator[ServedProcess]:
    """The project's serving app (or the module-level ``app_factory`` given) under ``uvicorn
    --workers N`` (not yet ready: see :func:`wait_workers`); the whole process group is
    stopped on exit."""
    from labs.common.tracking import OFFLINE_ENV

    log_dir = out_dir / f"workers-{workers}"
    log_dir.mkdir(parents=True, exist_ok=True)
    for old in log_dir.glob("predictions-worker-*"):
        old.unlink()
    env = {
        **os.environ,
        **OFFLINE_ENV,
        "SCALING_MODEL_FILE": str(model_file),
        "SCALING_LOG_DIR": str(log_dir),
    }

    factory = "labs.scaling.workers_app:app" if app_factory is None else dotted(app_factory)

    def command(port: int) -> list[str]:
        return [
            sys.executable, "-m", "uvicorn", factory, "--factory",
            "--workers", str(workers), "--host", HOST, "--port", str(port),
            "--log-level", log_level, "--no-access-log",
        ]  # fmt: skip

    with serve_process(
        command, log=out_dir / f"workers-{workers}.log", health_path=None, env=env,
        cwd=project_root(),
    ) as served:  # fmt: skip
        yield served


def wait_workers(served: ServedProcess, workers: int, timeout: float = 90.0) -> None:
    """Wait until ``/ready`` answers and every worker has logged that it started: with two
    workers, one ready worker alone would measure one worker."""
    served.wait_healthy("/ready", timeout)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        text = served.log.read_text(errors="replace") if served.log.exists() else ""
        if len(re.findall(r"Application startup complete", text)) >= workers:
            return
        if served.process.poll() is not None:
            break
        time.sleep(0.1)
    from labs.common.processes import ProcessStartError

    raise ProcessStartError(f"not all {workers} workers started:\n{served.log_tail()}")


@contextlib.contextmanager
def microbatch_server(
    model_file: Path,
    out_dir: Path,
    max_wait_ms: float,
    max_rows: int,
    score_rows: ScoreRows = predict_in_one_call,
) -> Iterator[ServedProcess]:
    """The micro-batching demo server (:mod:`labs.scaling.microbatch`) scoring with the
    module-level ``score_rows``; not yet waited for."""
    from labs.common.tracking import OFFLINE_ENV

    def command(port: int) -> list[str]:
        return [
            sys.executable, "-m", "labs.scaling.microbatch", "--model-file", str(model_file),
            "--port", str(port), "--max-wait-ms", str(max_wait_ms), "--max-rows", str(max_rows),
            "--scorer", dotted(score_rows),
        ]  # fmt: skip

    with serve_process(
        command, log=out_dir / "microbatch.log", health_path=None,
        env={**os.environ, **OFFLINE_ENV}, cwd=project_root(),
    ) as served:  # fmt: skip
        yield served


def noise_share(url: str, content: bytes, rows: int, *, clients: int, seconds: float) -> float:
    """The run-to-run noise of :func:`alternating_load` on this machine now: one server
    measured against itself (an A/A comparison); the relative gap between its two rates."""
    a, b = alternating_load({"A": url, "B": url}, content, rows, clients=clients, seconds=seconds)
    return abs(b["rows_per_s"] / a["rows_per_s"] - 1)


def alternating_load(
    urls: dict[Hashable, str],
    content: bytes,
    rows: int,
    *,
    clients: int,
    seconds: float,
    rounds: int = 4,
) -> list[dict[str, float]]:
    """:func:`load` against each server in turn, ``rounds`` times, so a burst of load elsewhere
    on the machine hits all of them alike; per server its best round (the capacity it showed
    when least disturbed; a disturbed round only ever lowers a rate) and the worst error
    share of any round."""
    parts: dict[Hashable, list[dict[str, float]]] = {key: [] for key in urls}
    for _ in range(rounds):
        for key, url in urls.items():
            parts[key].append(load(url, content, rows, clients=clients, seconds=seconds / rounds))
    out = []
    for key, runs in parts.items():
        best = max(runs, key=lambda r: r["requests_per_s"])
        out.append({
            "workers": key, "clients": clients, "batch": rows,
            "requests": sum(r["requests"] for r in runs), "rounds": len(runs),
            "requests_per_s": best["requests_per_s"], "rows_per_s": best["requests_per_s"] * rows,
            "p50_ms": best["p50_ms"], "p95_ms": best["p95_ms"],
            "error_share": max(r["error_share"] for r in runs),
        })  # fmt: skip
    return out
