"""Where alerts go: an append-only JSONL alert log, the serving app's ``/metrics`` (through
``POST /monitoring``), and the retraining deployment.

The log is idempotent: an alert already in it (same kind, day, batch and metric) is not
written again, so a retried or re-run job neither duplicates alerts nor re-triggers what they
trigger. It also tells a job that checks one day at a time whether an incident is still open
(:func:`firing_before`).
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any

from labs.monitoring.monitor import Alert, DayReport


def append_alerts(path: Path, alerts: Sequence[Alert]) -> list[Alert]:
    """Append alerts to a JSONL log (with the wall-clock time written); return those written.

    Idempotent: an alert already in the log (same kind, day, batch and metric) is skipped, so
    a retried or re-run job neither duplicates alerts nor re-triggers what they trigger.
    """
    seen = {_key(a) for a in read_alerts(path)}
    fresh = [a for a in alerts if _key(a) not in seen]
    if fresh:
        path.parent.mkdir(parents=True, exist_ok=True)
        stamp = time.strftime("%Y-%m-%dT%H:%M:%S%z")
        with path.open("a") as out:
            for alert in fresh:
                out.write(json.dumps({**asdict(alert), "logged_at": stamp}) + "\n")
    return fresh


def read_alerts(path: Path) -> list[Alert]:
    """Every alert in a JSONL alert log."""
    if not path.exists():
        return []
    alerts = []
    for line in path.read_text().splitlines():
        if line.strip():
            record = json.loads(line)
            record.pop("logged_at", None)
            alerts.append(Alert(**record))
    return alerts


def firing_before(path: Path, day: int) -> set[str]:
    """Alert kinds in the log for the day before ``day`` (incidents still open)."""
    return {a.kind for a in read_alerts(path) if a.day == day - 1}


def monitoring_update(report: DayReport) -> dict[str, Any]:
    """The ``POST /monitoring`` body for one day (the app's ``MonitoringUpdate``)."""
    rolling = report.rolling
    return {
        "day": report.day,
        "drift_share": report.drift_share,
        "prediction_drift": report.prediction_drift,
        "rolling_accuracy": _finite(rolling.get("accuracy")),
        "rolling_roc_auc": _finite(rolling.get("roc_auc")),
        "alerts": [
            {k: getattr(a, k) for k in ("kind", "day", "metric", "value", "threshold")}
            | {"reason": a.reason[:500]}
            for a in report.alerts
        ],
    }


def push_to_server(url: str, report: DayReport, client: Any = None) -> None:
    """Publish a day's gauges and alerts on the serving app's ``/metrics``."""
    import httpx

    owned = client is None
    client = client or httpx.Client(timeout=10.0)
    try:
        response = client.post(f"{url.rstrip('/')}/monitoring", json=monitoring_update(report))
        response.raise_for_status()
    finally:
        if owned:
            client.close()


def retrain_trigger(
    deployment: str = "retrain/retrain",
    parameters: dict[str, Any] | None = None,
    run: Callable[..., Any] | None = None,
) -> Callable[[Alert], None]:
    """An ``on_quality_alert`` hook that starts the retraining deployment without waiting
    (``prefect deployment run retrain/retrain`` from code). ``run`` defaults to Prefect's
    ``run_deployment``; needs ``PREFECT_API_URL`` and a served deployment."""

    def start(alert: Alert) -> None:
        runner = run
        if runner is None:
            from prefect.deployments import run_deployment

            runner = run_deployment
        runner(
            name=deployment,
            parameters=dict(parameters or {}),
            timeout=0,  # fire and forget: the monitor must not wait for a training run
            tags=["monitoring", f"alert:{alert.metric}"],
        )

    return start


def _key(alert: Alert) -> tuple[str, int, int, str]:
    return (alert.kind, alert.day, alert.data_day, alert.metric)


def _finite(value: float | None) -> float | None:
    return float(value) if value is not None and math.isfinite(value) else None
