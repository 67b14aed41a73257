"""Stress benchmark of the testing lab: the locust step ramp (a subprocess, headless, ``--csv``)
against the correct model and the slow bagged ensemble (the same answers, many times the work
per request), served by the project's serving app.

Per step and candidate: users, throughput, p50/p95/p99, error rate; then the knee where p99
leaves the lab's budget (``params.yaml`` → ``testing.p99_budget_ms``). The ramp is longer than
the lab's (users 1 … 16, 3 s a step). Prints the figures; writes reports/bench/testing.json.
Uses a throw-away MLflow store; leaves nothing behind.

Goals (the latencies the lab's tests do not assert): the ensemble's knee comes at or below
the top step / ``knee_ratio`` users; the correct model keeps p99 within budget at least
``knee_ratio`` times further. Exit 1 when a goal is missed.
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
USERS = (1, 2, 4, 8, 16)
STEP_SECONDS = 3.0


def main() -> int:
    from labs.common.data import make_churn_data
    from labs.common.model import TrainParams, train_model
    from labs.common.params import params_for
    from labs.common.serving.server import serve_in_background
    from labs.common.tables import text_table
    from labs.common.tracking import OFFLINE_ENV, log_sklearn_model, start_run
    from labs.testing import integration, stress
    from labs.testing.lab import TestingParams

    params = params_for(TestingParams, "testing")
    os.environ.update(OFFLINE_ENV)
    figures: dict[str, object] = {"users": list(USERS), "step_seconds": STEP_SECONDS}
    with tempfile.TemporaryDirectory(prefix="bench-testing-") as tmp:
        out = Path(tmp)
        os.environ["MLFLOW_TRACKING_URI"] = f"sqlite:///{out / 'mlflow.db'}"
        train = make_churn_data(params.train_rows, seed=params.seed)
        holdout = make_churn_data(200, seed=params.seed + 1)
        models = {
            "correct": train_model(train, TrainParams(seed=params.seed)),
            "slow_ensemble": stress.slow_ensemble(train, params.slow_request_ms).model,
        }
        print("Logging both candidates to a temporary MLflow store …", flush=True)
        with start_run("bench-testing", "bench"):
            uris = {k: log_sklearn_model(m, name=k).model_uri for k, m in models.items()}
        bodies = integration.request_bodies(holdout, 1)
        with contextlib.ExitStack() as stack:
            for name, uri in uris.items():
                server = stack.enter_context(
                    serve_in_background(uri, log_path=out / f"{name}.sqlite")
                )
                print(f"Ramp {list(USERS)} users × {STEP_SECONDS:g} s against {name} …")
                result = stress.run_ramp(
                    name, server.url, bodies, out, users=USERS, step_seconds=STEP_SECONDS,
                    pacing_s=params.stress_pacing_s, p99_budget_ms=params.p99_budget_ms,
                )  # fmt: skip
                print(text_table(result.steps, title=f"{name}:"))
                knee = result.knee_users
                print(f"  knee (p99 > {params.p99_budget_ms:g} ms): "
                      f"{knee if knee is not None else f'> {USERS[-1]}'} users\n")  # fmt: skip
                figures[name] = {"steps": result.steps, "knee_users": knee}
    slow_knee = figures["slow_ensemble"]["knee_users"]  # type: ignore[index]
    good_knee = figures["correct"]["knee_users"] or 2 * USERS[-1]  # type: ignore[index]
    goals = {
        "slow_knee_at_most_top_over_ratio": slow_knee is not None
        and slow_knee * params.knee_ratio <= USERS[-1],
        "correct_knee_ratio": slow_knee is not None and good_knee / slow_knee >= params.knee_ratio,
    }
    figures["goals"] = goals
    figures["load_average"] = os.getloadavg()[0]
    bench = ROOT / "reports" / "bench"
    bench.mkdir(parents=True, exist_ok=True)
    (bench / "testing.json").write_text(json.dumps(figures, indent=2) + "\n")
    print(f"load average {figures['load_average']:.1f}; written: {bench / 'testing.json'}")
    missed = [name for name, met in goals.items() if not met]
    print("goals: " + ("all met" if not missed else "MISSED " + ", ".join(missed)))
    return 1 if missed else 0


if __name__ == "__main__":
    raise SystemExit(main())
