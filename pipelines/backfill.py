"""Heavy tasks on Dask: the monitoring backfill (every day of the prediction log measured as
its own task, the alerts then decided day by day in order) and batch scoring (a batch scored
in chunks, one task each).

    python -m pipelines.backfill --workers 2         # a LocalCluster of 2 worker processes
    python -m pipelines.backfill --score 200000      # batch scoring, 5,000 rows a task
    DASK_SCHEDULER_ADDRESS=tcp://scheduler:8786 python -m pipelines.backfill   # a real cluster

Measuring a day (drift tests on its batch, quality on the batch whose labels arrived) reads
only the reference and the rules, so the days fan out over Dask workers through Prefect's
``DaskTaskRunner``. Whether an alert is *new* depends on the day before, so alerts are decided
afterwards, in day order, by the same :class:`~labs.monitoring.monitor.Monitor` the daily
``monitor`` flow uses: the backfill's reports equal the sequential job's, whatever the number
of workers. It reads the log and writes nothing (the alert log is the daily job's).

Where the work runs is configuration: ``DASK_SCHEDULER_ADDRESS`` set → that cluster; unset →
a ``LocalCluster`` started for the run and stopped after it.
"""

# No `from __future__ import annotations`: Prefect builds its parameter model from the flow
# signature.
import argparse
import os
import sys
import time
from dataclasses import asdict
from typing import Annotated, Any

from prefect import flow, unmapped
from pydantic import Field

from labs.common.paths import resolve
from labs.monitoring.steps import (
    MonitorJob,
    load_inputs,
    measure_day,
    plan_job,
    raise_alerts,
    rules_from_params,
    summarize,
)
from pipelines.monitor import LAB_DIR
from pipelines.tasks import as_task


def dask_runner(workers: int = 2) -> Any:
    """Prefect's Dask task runner: the cluster at ``$DASK_SCHEDULER_ADDRESS`` if set, else a
    ``LocalCluster`` of ``workers`` single-threaded processes (no dashboard)."""
    from prefect_dask import DaskTaskRunner

    address = os.environ.get("DASK_SCHEDULER_ADDRESS")
    if address:
        return DaskTaskRunner(address=address)
    return DaskTaskRunner(
        cluster_kwargs={
            "n_workers": workers,
            "threads_per_worker": 1,
            "processes": True,
            "dashboard_address": None,
        }
    )


@flow(name="monitor-backfill", log_prints=True, validate_parameters=True)
def monitor_backfill(
    prediction_log: str = f"{LAB_DIR}/predictions.sqlite",
    outcomes: str = f"{LAB_DIR}/outcomes.csv",
    reference: str = f"{LAB_DIR}/reference.csv",
    days: list[Annotated[int, Field(ge=0)]] | None = None,
) -> dict[str, Any]:
    """Measure every day as a task (in parallel on the flow's task runner), then decide the
    alerts in day order; return the summary and each day's report."""
    job = MonitorJob(
        prediction_log=resolve(prediction_log),
        outcomes=resolve(outcomes),
        reference=resolve(reference),
        # read for what fired before the first day, never written: a backfill starts fresh
        alert_log=resolve(f"{LAB_DIR}/backfill-no-alerts.jsonl"),
        rules=rules_from_params(),
        days=tuple(days) if days is not None else None,
        server_url=None,
        retrain_deployment=None,
    )
    scored, ref = load_inputs(job)
    monitor, checked = plan_job(job, scored, ref)
    futures = as_task(measure_day).map(unmapped(monitor), checked, unmapped(scored))
    reports = raise_alerts(monitor, [future.result() for future in futures])
    return {"summary": summarize(reports), "reports": [comparable(r) for r in reports]}


def score_chunk(model_ref: str, start: int, rows: int, seed: int) -> list[float]:
    """Churn probabilities of the batch's chunk at ``start`` (``rows`` customers drawn from
    ``seed + start``), scored where the task runs: the model is loaded there (skops,
    allowlisted types, a registered version's sha256 checked), never pickled across, and the
    rows are drawn there, so a task ships three numbers and a name, not a frame."""
    from labs.common.data import make_churn_data
    from labs.common.model import split_xy
    from labs.common.tracking import load_model_file, load_sklearn_model

    model = (
        load_sklearn_model(model_ref)
        if model_ref.startswith(("models:/", "runs:/"))
        else load_model_file(resolve(model_ref))
    )
    x, _ = split_xy(make_churn_data(rows, seed=seed + start))
    return [float(p) for p in model.predict_proba(x)[:, 1]]


@flow(name="score-batch", log_prints=True, validate_parameters=True)
def score_batch(
    model: str = "models/churn-model.skops",
    rows: Annotated[int, Field(ge=1)] = 20_000,
    chunk_rows: Annotated[int, Field(ge=1)] = 5_000,
    seed: int = 0,
) -> list[float]:
    """Score a seeded batch of ``rows`` customers in chunks, one task per chunk (in parallel
    on the flow's task runner); the probabilities in row order, whatever ran them.
    ``model``: a file (the DVC baseline by default) or a registry URI such as
    ``models:/churn-model@champion``."""
    starts, sizes = zip(*chunks(rows, chunk_rows), strict=True)
    futures = as_task(score_chunk).map(unmapped(model), list(starts), list(sizes), unmapped(seed))
    return [p for future in futures for p in future.result()]


def comparable(report: Any) -> dict[str, Any]:
    """A day's report without its timing: what two backfills must agree on."""
    data = asdict(report)
    data.pop("seconds", None)
    return data


def chunks(rows: int, chunk_rows: int) -> list[tuple[int, int]]:
    """``(start, size)`` of each chunk of a batch of ``rows``."""
    return [(start, min(chunk_rows, rows - start)) for start in range(0, rows, chunk_rows)]


def run_scoring(workers: int = 2, **params: Any) -> tuple[list[float], float]:
    """:func:`score_batch` on ``workers`` Dask workers (or ``$DASK_SCHEDULER_ADDRESS``); the
    probabilities and the wall time in seconds, cluster start and stop included."""
    start = time.perf_counter()
    result = score_batch.with_options(task_runner=dask_runner(workers))(**params)
    return result, time.perf_counter() - start


def run_backfill(workers: int = 2, **params: Any) -> tuple[dict[str, Any], float]:
    """The backfill on ``workers`` Dask workers (or ``$DASK_SCHEDULER_ADDRESS``); the result
    and its wall time in seconds, cluster start and stop included."""
    start = time.perf_counter()
    result = monitor_backfill.with_options(task_runner=dask_runner(workers))(**params)
    return result, time.perf_counter() - start


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m pipelines.backfill", description=__doc__)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--score", type=int, metavar="ROWS", help="batch scoring instead")
    args = parser.parse_args(argv)
    if args.score:
        probabilities, seconds = run_scoring(args.workers, rows=args.score)
        mean = sum(probabilities) / len(probabilities)
        print(f"{len(probabilities)} rows scored in {seconds:.1f} s (mean p {mean:.4f})")
        return 0
    result, seconds = run_backfill(args.workers)
    print(f"{len(result['reports'])} days in {seconds:.1f} s: {result['summary']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
