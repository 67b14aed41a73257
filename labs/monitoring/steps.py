"""The monitoring job's steps, and the wiring that runs them day after day.

:func:`run_monitor_job` wires small step functions (:class:`MonitorSteps`): load the log and
the label feed, check a day, publish its alerts, request retraining. The lab runs it with the
plain functions; the Prefect flow ``monitor`` (``pipelines/monitor.py``) runs the very same
wiring with each step wrapped as a task.

Inputs are files, so the job runs anywhere the log is readable: the prediction log (SQLite),
the label feed (CSV: ``request_id, row_index, day, churned``; a missing label is an empty
cell) and the reference batch (CSV: features, ``churned``, ``churn_probability``).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, fields, replace
from pathlib import Path
from typing import Any

import pandas as pd

from labs.common.data import CATEGORICAL_FEATURES, CATEGORIES, DAY
from labs.common.serving.predlog import read_predictions
from labs.monitoring.alerts import append_alerts, firing_before, push_to_server, retrain_trigger
from labs.monitoring.monitor import (
    QUALITY_METRICS,
    Alert,
    AlertRules,
    DayReport,
    Monitor,
    Reference,
    join_outcomes,
)


@dataclass(frozen=True)
class MonitorJob:
    """What one run of the job reads, writes and checks."""

    prediction_log: Path
    outcomes: Path
    reference: Path
    alert_log: Path
    rules: AlertRules
    days: tuple[int, ...] | None = None  # None: every day in the label feed
    server_url: str | None = None  # push gauges and alerts to this server's /metrics
    retrain_deployment: str | None = None  # start this deployment on a new quality incident


def load_inputs(job: MonitorJob) -> tuple[pd.DataFrame, Reference]:
    """The log joined with the label feed, and the reference batch."""
    outcomes = pd.read_csv(job.outcomes, dtype={"request_id": str})
    scored = join_outcomes(read_predictions(job.prediction_log), outcomes)
    reference = Reference.from_scored(read_frame(job.reference))
    return scored, reference


def check_day(monitor: Monitor, day: int, scored: pd.DataFrame) -> DayReport:
    """Drift of the day's batch, quality of the batch whose labels arrived today, alerts."""
    return monitor.check_day(day, scored)


def publish(report: DayReport, alert_log: Path, server_url: str | None) -> list[Alert]:
    """Append the day's alerts to the alert log (idempotent) and push the gauges; return the
    alerts that were new to the log."""
    written = append_alerts(alert_log, report.alerts)
    if server_url:
        # only alerts new to the log count on the server: a re-run does not count them twice
        push_to_server(server_url, replace(report, alerts=written))
    return written


def request_retraining(alert: Alert, deployment: str) -> None:
    """Start the retraining deployment (fire and forget)."""
    retrain_trigger(deployment)(alert)


@dataclass(frozen=True)
class MonitorSteps:
    """The steps, swappable: plain functions by default, Prefect tasks in the flow."""

    load_inputs: Callable[..., Any] = load_inputs
    check_day: Callable[..., Any] = check_day
    publish: Callable[..., Any] = publish
    request_retraining: Callable[..., Any] = request_retraining


def run_monitor_job(
    job: MonitorJob,
    steps: MonitorSteps | None = None,
    *,
    on_day: Callable[[DayReport], None] | None = None,
    on_quality_alert: Callable[[Alert], None] | None = None,
    monitor_cls: type[Monitor] = Monitor,
) -> list[DayReport]:
    """Check each day in order; publish alerts and gauges; on each *new* quality incident
    call ``on_quality_alert`` and start ``job.retrain_deployment`` if set. ``monitor_cls``
    decides the days (the real :class:`Monitor` unless a lab substitutes a broken one)."""
    steps = steps or MonitorSteps()
    scored, reference = steps.load_inputs(job)
    monitor, days = plan_job(job, scored, reference, monitor_cls)
    reports = []
    for day in days:
        report = steps.check_day(monitor, day, scored)
        written = steps.publish(report, job.alert_log, job.server_url)
        for alert in written:
            if alert.kind == "quality" and alert.new:
                if on_quality_alert is not None:
                    on_quality_alert(alert)
                if job.retrain_deployment:
                    steps.request_retraining(alert, job.retrain_deployment)
        if on_day is not None:
            on_day(report)
        reports.append(report)
    return reports


def plan_job(
    job: MonitorJob,
    scored: pd.DataFrame,
    reference: Reference,
    monitor_cls: type[Monitor] = Monitor,
) -> tuple[Monitor, list[int]]:
    """The days to check (all logged days unless ``job.days``) and the monitor for them, which
    knows what was firing the day before the first (from the alert log)."""
    days = sorted(int(d) for d in scored[DAY].unique()) if job.days is None else list(job.days)
    first = days[0] if days else 0
    return monitor_cls(reference, job.rules, firing=firing_before(job.alert_log, first)), days


def measure_day(monitor: Monitor, day: int, scored: pd.DataFrame) -> DayReport:
    """One day's drift and quality numbers, no alerts: days can be measured in parallel."""
    return monitor.measure_day(day, scored)


def raise_alerts(monitor: Monitor, reports: Sequence[DayReport]) -> list[DayReport]:
    """Measured days → the same reports with their alerts, decided in day order."""
    for report in sorted(reports, key=lambda r: r.day):
        report.alerts = monitor.alerts_for(report)
    return sorted(reports, key=lambda r: r.day)


def summarize(reports: list[DayReport]) -> dict[str, Any]:
    """What the flow returns: days checked, alerts by kind, the first day each kind fired."""
    alerts = [a for r in reports for a in r.alerts]
    return {
        "days": [r.day for r in reports],
        "alerts": {k: sum(a.kind == k for a in alerts) for k in ("drift", "quality")},
        "first_alert_day": {
            k: min((a.day for a in alerts if a.kind == k), default=None)
            for k in ("drift", "quality")
        },
        "last_drift_share": reports[-1].drift_share if reports else None,
    }


def read_frame(path: Path) -> pd.DataFrame:
    """A CSV batch with the categorical columns restored as in the training data."""
    frame = pd.read_csv(path)
    for name in CATEGORICAL_FEATURES:
        if name in frame:
            frame[name] = pd.Categorical(frame[name], categories=list(CATEGORIES[name]))
    return frame


def rules_from_params(**overrides: Any) -> AlertRules:
    """Alert rules: the code defaults, then ``params.yaml`` → ``monitoring``, then overrides."""
    from labs.common.params import ParamsError, load_params

    try:
        section = load_params("monitoring")
    except ParamsError:
        section = {}
    names = {f.name for f in fields(AlertRules)}
    values = {k: v for k, v in section.items() if k in names}
    values.update({k: v for k, v in overrides.items() if v is not None})
    return AlertRules(**values)


def worst_day(reports: Sequence[DayReport]) -> int | None:
    """The labelled batch with the lowest ROC-AUC (else the day with most drift)."""
    labelled = [r for r in reports if r.quality and math.isfinite(r.quality["roc_auc"])]
    if labelled:
        worst = min(labelled, key=lambda r: r.quality["roc_auc"])
        return worst.labelled_day
    if reports:
        return max(reports, key=lambda r: (r.drift_share, -r.prediction_p_value)).day
    return None


def daily_table(reports: Sequence[DayReport]) -> pd.DataFrame:
    """One row per batch day: drift found that day, quality once its labels arrived."""
    rows: dict[int, dict[str, Any]] = {}
    for r in reports:
        rows.setdefault(r.day, {"day": r.day})
        rows[r.day].update(
            rows=r.rows,
            drift_share=r.drift_share,
            drifted_features=" ".join(r.drifted_features),
            prediction_drift=r.prediction_drift,
            prediction_p_value=r.prediction_p_value,
            drift_alert=any(a.kind == "drift" for a in r.alerts),
        )
        if r.labelled_day is not None:
            target = rows.setdefault(r.labelled_day, {"day": r.labelled_day})
            target.update({k: r.quality[k] for k in QUALITY_METRICS})
            target.update(
                labels_arrived_day=r.day,
                rolling_accuracy=r.rolling.get("accuracy"),
                rolling_roc_auc=r.rolling.get("roc_auc"),
                quality_alert=any(a.kind == "quality" for a in r.alerts),
            )
    return pd.DataFrame([rows[d] for d in sorted(rows)])
