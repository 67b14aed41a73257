"""The stress test: a locust step ramp against a served candidate, run as a subprocess in its
own process group (stopped in ``finally``, also on Ctrl-C), summarised per step: throughput,
p50/p95/p99 latency, error rate, and the knee — the first step whose p99 leaves the budget
or whose error rate passes 1 %.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

LOCUSTFILE = Path(__file__).with_name("locustfile.py")
MAX_ERROR_RATE = 0.01


@dataclass(frozen=True)
class StressResult:
    """One candidate's ramp: a row per step and the knee (None: within budget throughout)."""

    name: str
    steps: list[dict[str, float]]
    knee_users: int | None
    requests: int
    locust_exit_code: int
    locust_csv_requests: int  # locust's own count (``--csv`` stats), a cross-check of ours
    locust_csv_failures: int


def locust_command(url: str, csv_prefix: Path) -> list[str]:
    locust = Path(sys.executable).with_name("locust")
    return [
        str(locust), "-f", str(LOCUSTFILE), "--headless", "--host", url,
        "--csv", str(csv_prefix), "--only-summary", "--loglevel", "WARNING",
    ]  # fmt: skip


def run_ramp(
    name: str,
    url: str,
    bodies: list[str],
    out_dir: Path,
    *,
    users: tuple[int, ...],
    step_seconds: float,
    pacing_s: float,
    p99_budget_ms: float,
) -> StressResult:
    """Drive ``url`` with the step ramp; summarise what the locust subprocess measured."""
    from labs.common.processes import stop_process_group

    out_dir.mkdir(parents=True, exist_ok=True)
    samples, body_file = out_dir / f"stress-{name}.jsonl", out_dir / f"stress-{name}-bodies.txt"
    body_file.write_text("\n".join(bodies) + "\n")
    samples.unlink(missing_ok=True)
    env = {
        **os.environ,
        "STRESS_USERS": ",".join(str(u) for u in users),
        "STRESS_STEP_SECONDS": str(step_seconds),
        "STRESS_PACING_S": str(pacing_s),
        "STRESS_SAMPLES": str(samples),
        "STRESS_BODIES": str(body_file),
    }
    log = out_dir / f"stress-{name}.log"
    with log.open("wb") as out:
        process = subprocess.Popen(
            locust_command(url, out_dir / f"stress-{name}"),
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            env=env,
            start_new_session=True,  # its own group: stopping it stops every greenlet's host
        )
    try:
        code = process.wait(timeout=len(users) * step_seconds + 60)
    finally:
        stop_process_group(process, grace=5)
    if not samples.exists():
        raise RuntimeError(
            f"locust wrote no samples (exit {process.returncode}):\n{log.read_text()[-2000:]}"
        )
    rows = [json.loads(line) for line in samples.read_text().splitlines() if line]
    steps = summarise_steps(rows, users)
    total, failures = locust_totals(out_dir / f"stress-{name}_stats.csv")
    return StressResult(
        name, steps, knee(steps, p99_budget_ms), len(rows), int(code), total, failures
    )


def locust_totals(stats_csv: Path) -> tuple[int, int]:
    """Request and failure counts of the ``Aggregated`` row of locust's ``--csv`` stats."""
    import csv

    with stats_csv.open() as f:
        for row in csv.DictReader(f):
            if row["Name"] == "Aggregated":
                return int(row["Request Count"]), int(row["Failure Count"])
    raise RuntimeError(f"no Aggregated row in {stats_csv}")


def summarise_steps(rows: list[dict[str, Any]], users: tuple[int, ...]) -> list[dict[str, float]]:
    """Per step (requests that finished while that many users ran): throughput, percentiles,
    error rate. Throughput is requests over the time they span."""
    steps = []
    for u in users:
        at = [r for r in rows if r["users"] == u]
        if len(at) < 2:
            nan = float("nan")
            steps.append(
                {"users": u, "requests": len(at), "rps": 0.0, "p50_ms": nan, "p95_ms": nan,
                 "p99_ms": nan, "error_rate": 1.0}
            )  # fmt: skip
            continue
        ms = np.array([r["ms"] for r in at])
        ok = np.array([r["ok"] for r in at])
        span = max(at[-1]["t"] - at[0]["t"], 1e-3)
        p50, p95, p99 = np.percentile(ms, [50, 95, 99])
        steps.append(
            {
                "users": u,
                "requests": len(at),
                "rps": len(at) / span,
                "p50_ms": float(p50),
                "p95_ms": float(p95),
                "p99_ms": float(p99),
                "error_rate": float(1 - ok.mean()),
            }
        )
    return steps


def knee(steps: list[dict[str, float]], p99_budget_ms: float) -> int | None:
    """The first user count whose p99 exceeds the budget or whose errors pass 1 %."""
    for s in steps:
        if not s["p99_ms"] <= p99_budget_ms or s["error_rate"] > MAX_ERROR_RATE:
            return int(s["users"])
    return None


def ensemble_model(train: Any, copies: int) -> Any:
    """The planted defect: a bagged "ensemble" of ``copies`` copies of one fitted logistic
    regression (an ensembling experiment's leftover). It answers exactly as the one model
    does — at ``copies`` times the work on every request."""
    from sklearn.ensemble import BaggingClassifier
    from sklearn.linear_model import LogisticRegression

    from labs.common.data import FEATURES, TARGET
    from labs.common.model import TrainParams, build_model

    bagged = BaggingClassifier(
        LogisticRegression(max_iter=1000), n_estimators=1, bootstrap=False, random_state=0
    )
    model = build_model(TrainParams()).set_params(classifier=bagged)
    return with_copies(model.fit(train[list(FEATURES)], train[TARGET]), copies)


def with_copies(model: Any, copies: int) -> Any:
    """The fitted one-member bag of ``model`` holding its member ``copies`` times (the member
    is fitted once: sizing the defect costs no refits)."""
    bag = model.named_steps["classifier"]
    bag.estimators_ = [bag.estimators_[0]] * copies
    bag.estimators_features_ = [bag.estimators_features_[0]] * copies
    bag._seeds = np.repeat(bag._seeds[:1], copies)
    bag.n_estimators = copies
    return model


@dataclass(frozen=True)
class SlowModel:
    """The defect sized to this machine: ``copies`` chosen so one one-row ``predict_proba``
    takes about ``request_ms`` here (fastest of repeated calls, ``measured_ms``)."""

    model: Any
    copies: int
    measured_ms: float


def one_row_ms(model: Any, row: Any, repeats: int = 21) -> float:
    """Fastest wall milliseconds of ``model.predict_proba`` on one row, after a warm-up: the
    minimum is the call's own cost, least disturbed by whatever else the machine runs."""
    import time

    model.predict_proba(row)
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        model.predict_proba(row)
        times.append(time.perf_counter() - start)
    return float(np.min(times)) * 1000


def slow_ensemble(train: Any, request_ms: float, *, max_copies: int = 5000) -> SlowModel:
    """An ensemble costing about ``request_ms`` per one-row call on *this* machine.

    A fixed size made the stress claim depend on the CPU: a fast machine served a small one
    within the budget at every step. A call costs a fixed part (the pipeline) plus a part per
    member; two probe sizes measure both, a line fitted through them sets the count, and up to
    two more steps correct it while it misses by more than 15-25 %."""
    from labs.common.data import FEATURES

    row = train[list(FEATURES)].iloc[:1]
    model = ensemble_model(train, 10)
    points = [(n, one_row_ms(with_copies(model, n), row)) for n in (10, 200)]
    copies, ms = 200, points[-1][1]
    for _ in range(3):
        per_copy, fixed = np.polyfit(*zip(*points, strict=True), deg=1)  # least squares
        per_copy = max(float(per_copy), 1e-3)
        copies = int(min(max_copies, max(2, np.ceil((request_ms - fixed) / per_copy))))
        ms = one_row_ms(with_copies(model, copies), row)
        points.append((copies, ms))
        if 0.85 * request_ms <= ms <= 1.25 * request_ms or copies == max_copies:
            break
    return SlowModel(model, copies, ms)
