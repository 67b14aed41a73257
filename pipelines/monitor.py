"""The ``monitor`` flow: the daily monitoring job over the prediction log, as Prefect tasks.

    python -m pipelines.monitor                       # re-check the last lab replay (all days)
    prefect deployment run monitor/monitor --param 'days=[12]'    # once served: one day

The steps are the monitoring lab's (``labs.monitoring.steps``); :func:`run_monitor_job` wires
them. This flow runs the same wiring with each step wrapped as a task (retries where a step
touches files or the network); ``make lab-monitoring`` runs it with the plain functions, no
Prefect server. A new quality incident can start ``retrain/retrain`` (``retrain_deployment``).

Inputs are files, so the job runs anywhere the log is readable: the prediction log (SQLite),
the label feed (CSV: ``request_id, row_index, day, churned``; a missing label is an empty
cell) and the reference batch (CSV: features, ``churned``, ``churn_probability``). Relative
paths are under the project root; the defaults are the files ``make lab-monitoring`` leaves.
"""

# No `from __future__ import annotations`: Prefect builds its parameter model from the flow
# signature, and string annotations (Annotated[...]) would not resolve.
from pathlib import Path
from typing import Annotated, Any

from prefect import flow, get_run_logger
from pydantic import Field

from labs.common.paths import project_root
from labs.monitoring.steps import (
    MonitorJob,
    MonitorSteps,
    check_day,
    load_inputs,
    publish,
    request_retraining,
    rules_from_params,
    run_monitor_job,
    summarize,
)
from pipelines.tasks import as_task

LAB_DIR = "reports/monitoring"


def task_steps() -> MonitorSteps:
    """The steps as Prefect tasks: retries for file and network I/O (SQLite locks, the
    server restarting), none for the checks (a retry would repeat the same verdict)."""
    return MonitorSteps(
        load_inputs=as_task(load_inputs, retries=3),
        check_day=as_task(check_day),
        publish=as_task(publish, retries=3),
        request_retraining=as_task(request_retraining, retries=2),
    )


Fraction = Annotated[float, Field(gt=0, le=1)]


@flow(name="monitor", log_prints=True, validate_parameters=True)
def monitor(
    prediction_log: str = f"{LAB_DIR}/predictions.sqlite",
    outcomes: str = f"{LAB_DIR}/outcomes.csv",
    reference: str = f"{LAB_DIR}/reference.csv",
    alert_log: str = f"{LAB_DIR}/alerts.jsonl",
    days: list[Annotated[int, Field(ge=0)]] | None = None,
    server_url: str | None = None,
    alpha: Annotated[float, Field(gt=0, lt=0.5)] | None = None,
    drift_share_alert: Fraction | None = None,
    auc_drop_alert: Annotated[float, Field(gt=0, lt=1)] | None = None,
    accuracy_drop_alert: Annotated[float, Field(gt=0, lt=1)] | None = None,
    label_delay_days: Annotated[int, Field(ge=0)] | None = None,
    retrain_deployment: str | None = None,
) -> dict[str, Any]:
    """Check the logged predictions day by day for drift and (late-labelled) quality; alert.

    Unset thresholds come from ``params.yaml`` → ``monitoring``. ``retrain_deployment``
    (e.g. ``retrain/retrain``) is started once per new quality incident.
    """
    logger = get_run_logger()
    job = MonitorJob(
        prediction_log=_resolve(prediction_log),
        outcomes=_resolve(outcomes),
        reference=_resolve(reference),
        alert_log=_resolve(alert_log),
        rules=rules_from_params(
            alpha=alpha,
            drift_share_alert=drift_share_alert,
            auc_drop_alert=auc_drop_alert,
            accuracy_drop_alert=accuracy_drop_alert,
            label_delay_days=label_delay_days,
        ),
        days=tuple(days) if days is not None else None,
        server_url=server_url,
        retrain_deployment=retrain_deployment,
    )
    reports = run_monitor_job(
        job,
        task_steps(),
        on_day=lambda r: logger.info(
            "day %d: drift share %.2f, prediction drift %s, %d alert(s)",
            r.day,
            r.drift_share,
            r.prediction_drift,
            len(r.alerts),
        ),  # fmt: skip
    )
    return summarize(reports)


def _resolve(path: str) -> Path:
    resolved = Path(path)
    return resolved if resolved.is_absolute() else project_root() / resolved


def missing_inputs() -> list[Path]:
    """The default input files that are not there (``make lab-monitoring`` writes them)."""
    names = ("predictions.sqlite", "outcomes.csv", "reference.csv")
    return [p for p in (_resolve(f"{LAB_DIR}/{n}") for n in names) if not p.exists()]


if __name__ == "__main__":
    import sys

    from pipelines.entry import run_flow_cli

    if missing := missing_inputs():
        print(
            "monitor: nothing to check yet — missing "
            + ", ".join(str(p) for p in missing)
            + "; run `make lab-monitoring` first (it replays a month of traffic).",
            file=sys.stderr,
        )
        sys.exit(2)
    sys.exit(run_flow_cli("monitor", monitor))
