"""What the monitoring lab leaves for people besides the plot: Evidently's report of the worst
day, the day-by-day table, and the story in three sentences."""

from __future__ import annotations

import math
from pathlib import Path

import pandas as pd

from labs.common.data import DAY, FEATURES, LABEL, PROBA, TARGET
from labs.common.serving.predlog import read_predictions
from labs.common.tables import text_table
from labs.monitoring.monitor import Alert, Reference, join_outcomes
from labs.monitoring.params import MonitoringParams


def worst_day_report(
    params: MonitoringParams,
    reference: Reference,
    log_path: Path,
    outcomes: pd.DataFrame,
    day: int | None,
    out_dir: Path,
) -> Path:
    """Evidently's drift + classification report of the worst labelled day, from the log."""
    from labs.common.drift import detect_drift

    day = 0 if day is None else day
    scored = join_outcomes(read_predictions(log_path), outcomes[outcomes[DAY] == day])
    columns = [*FEATURES, TARGET, PROBA, LABEL]
    for old in out_dir.glob("report_worst_day_*.html"):
        old.unlink()
    path = out_dir / f"report_worst_day_{day:02d}.html"
    detect_drift(
        reference.frame[columns],
        scored[columns],
        monitored=[PROBA],
        alpha=params.alpha,
        classification=(TARGET, LABEL, PROBA),
        html_path=path,
    )
    return path


def daily_text(table: pd.DataFrame) -> str:
    """The day-by-day table for the printout: each batch day's drift, and its quality once its
    labels arrived (on which day); which alerts are about that day's batch."""
    rows = []
    for r in table.to_dict("records"):
        about = [k for k in ("drift", "quality") if _known(r.get(f"{k}_alert")) and r[f"{k}_alert"]]
        arrived = r.get("labels_arrived_day")
        rows.append(
            {
                "day": int(r["day"]),
                "drift share": r["drift_share"],
                "pred. drift": bool(r["prediction_drift"]),
                "ROC-AUC": r.get("roc_auc") if _known(r.get("roc_auc")) else None,
                "accuracy": r.get("accuracy") if _known(r.get("accuracy")) else None,
                "labels on day": int(arrived) if _known(arrived) else None,
                "alerts about it": " + ".join(about) or None,
            }
        )
    return text_table(rows, formats={"drift share": lambda v: f"{v:.2f}"})


def story(params: MonitoringParams, alerts: list[Alert], retrain_requests: list[Alert]) -> str:
    first = {
        k: min((a.day for a in alerts if a.kind == k), default=None) for k in ("drift", "quality")
    }
    asked = ", ".join(f"day {a.day} ({a.metric} {a.value:.3f})" for a in retrain_requests)
    return "\n".join(
        [
            f"What happened: quiet days 0–{params.covariate_start_day - 1}; covariate shift "
            f"from day {params.covariate_start_day} → first drift alert on day {first['drift']};",
            f"concept drift from day {params.concept_start_day} → invisible to the drift tests "
            f"(already firing), first quality alert on day {first['quality']}, when its labels "
            f"arrived ({params.label_delay_days} days late).",
            f"Retraining requested: {asked or 'never'}.",
        ]
    )


def _known(value: object) -> bool:
    """Not missing: None and NaN (a day whose labels have not arrived) are unknown."""
    return value is not None and not (isinstance(value, float) and math.isnan(value))
