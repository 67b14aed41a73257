"""Heavy tasks on Dask: wall time of the monitoring backfill and of batch scoring (400,000
rows in 8 chunks) on 1 and 2 LocalCluster workers (cluster start and stop included) against
plain sequential code, and whether all give identical results. Needs `make lab-monitoring`
first (its prediction log); starts its own Prefect server. Prints figures; writes
reports/bench/backfill.json."""

from __future__ import annotations

import json
import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SCORE_ROWS, SCORE_CHUNK = 400_000, 50_000


def main() -> int:
    log = ROOT / "reports" / "monitoring" / "predictions.sqlite"
    if not log.exists():  # skipped, not failed: `make bench` runs every script in turn
        print(f"skipped: no prediction log at {log}; run `make lab-monitoring` first")
        return 0
    from labs.common.processes import serve_process
    from labs.common.tracking import OFFLINE_ENV

    with tempfile.TemporaryDirectory(prefix="bench-backfill-") as tmp:
        env = {**os.environ, **OFFLINE_ENV, "PREFECT_HOME": str(Path(tmp) / "prefect")}
        prefect = str(Path(sys.executable).parent / "prefect")
        with serve_process(
            lambda port: (
                [prefect, "server", "start", "--host", "127.0.0.1", "--port", port]
                + ["--analytics-off"]
            ),
            log=Path(tmp) / "prefect.log",
            health_path="/api/health",
            timeout=120,
            env=env,
        ) as server:
            # the flow and every Dask worker process report to this server
            os.environ.update({**OFFLINE_ENV, "PREFECT_HOME": env["PREFECT_HOME"]})
            os.environ["PREFECT_API_URL"] = f"{server.url}/api"
            # no log shipping to a server that stops before the interpreter exits
            os.environ["PREFECT_LOGGING_TO_API_ENABLED"] = "false"
            figures = measure(Path(tmp))
    out = ROOT / "reports" / "bench"
    out.mkdir(parents=True, exist_ok=True)
    (out / "backfill.json").write_text(json.dumps(figures, indent=2))
    print(f"{'run':38} {'wall s':>7}  identical to sequential")
    for name, row in figures["runs"].items():
        print(f"  {name:36} {row['wall_s']:7.2f}  {row['identical']}")
    print(f"days: {figures['days']}, load before: {figures['load_before']:.2f}")
    return 0 if all(r["identical"] for r in figures["runs"].values()) else 1


def measure(tmp: Path) -> dict:
    from labs.monitoring.steps import MonitorJob, rules_from_params, run_monitor_job
    from pipelines.backfill import (
        LAB_DIR,
        chunks,
        comparable,
        run_backfill,
        run_scoring,
        score_chunk,
    )

    load_before = os.getloadavg()[0]
    job = MonitorJob(
        prediction_log=ROOT / LAB_DIR / "predictions.sqlite",
        outcomes=ROOT / LAB_DIR / "outcomes.csv",
        reference=ROOT / LAB_DIR / "reference.csv",
        alert_log=tmp / "no-alerts.jsonl",
        rules=rules_from_params(),
        days=None,
        server_url=None,
        retrain_deployment=None,
    )
    start = time.perf_counter()
    # compared as JSON: a day without labels has NaN metrics, and NaN != NaN
    sequential = json.dumps([comparable(r) for r in run_monitor_job(job)], sort_keys=True)
    runs = {"sequential (plain functions)": {"wall_s": time.perf_counter() - start}}
    for workers in (1, 2):
        result, wall = run_backfill(workers)
        runs[f"dask, {workers} worker(s)"] = {
            "wall_s": wall,
            "identical": json.dumps(result["reports"], sort_keys=True) == sequential,
        }
    runs["sequential (plain functions)"]["identical"] = True
    # Batch scoring: 400,000 customers in 8 chunks of 50,000, each drawn and scored in a task.
    model = str(ROOT / "models" / "churn-model.skops")
    start = time.perf_counter()
    plain = [p for c, n in chunks(SCORE_ROWS, SCORE_CHUNK) for p in score_chunk(model, c, n, 0)]
    runs["scoring: sequential chunks"] = {"wall_s": time.perf_counter() - start, "identical": True}
    for workers in (1, 2):
        scored, wall = run_scoring(workers, model=model, rows=SCORE_ROWS, chunk_rows=SCORE_CHUNK)
        runs[f"scoring: dask, {workers} worker(s)"] = {"wall_s": wall, "identical": scored == plain}
    return {"days": len(json.loads(sequential)), "load_before": load_before, "runs": runs}


if __name__ == "__main__":
    sys.exit(main())
