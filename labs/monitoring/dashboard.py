"""The lab's picture: one day axis, one panel per signal — quality on late labels, drift of the
day's batch, latency against its SLO, and the alerts that fired.

Drawn with :mod:`labs.common.plots`, so beside ``dashboard.png`` lies ``dashboard.png.json``,
what is drawn (series, titles, limits, values), which the tests read. Rates and scores are on
0–1; latency starts at 0 and shows the percentile the SLO is about (p99).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd

from labs.common.plots import PALETTE, from_zero, new_figure, save_figure, unit_interval
from labs.monitoring.monitor import QUALITY_METRICS, Alert, AlertRules, Reference
from labs.monitoring.params import MonitoringParams

TITLES = {
    "quality": "Quality of each day's predictions, once its labels arrived",
    "drift": "Data and prediction drift of each day's batch (Cramér–von Mises / χ², Bonferroni)",
    "latency": "Request latency as the clients saw it: p99 per day",
    "alerts": "Alerts, by the day the job raised them (★ a new incident)",
}
NAMES = {"roc_auc": "ROC-AUC", "accuracy": "accuracy", "precision": "precision", "recall": "recall"}
COLOURS = dict(zip(("roc_auc", "accuracy", "precision", "recall"), PALETTE, strict=False))
DRIFT, PREDICTION, LATENCY = PALETTE[4], PALETTE[3], PALETTE[2]


def plot_dashboard(
    params: MonitoringParams,
    rules: AlertRules,
    table: pd.DataFrame,
    alerts: list[Alert],
    reference: Reference,
    path: Path,
) -> dict[str, Any]:
    """Four panels sharing the day axis, the phases shaded; returns what was drawn."""
    fig, axes = new_figure(
        4, 1, size=(11, 11), sharex=True, gridspec_kw={"height_ratios": [3, 2, 1.6, 1.2]}
    )
    quality_ax, drift_ax, latency_ax, alert_ax = axes
    days = table["day"].tolist()
    for ax in axes:
        _shade_phases(ax, params)
    _quality(quality_ax, params, rules, table, alerts, reference)
    _drift(drift_ax, params, table)
    _latency(latency_ax, params, table)
    _alerts(alert_ax, alerts)
    alert_ax.set_xlabel("day")
    alert_ax.set_xticks(range(0, params.days, 2))
    alert_ax.set_xlim(min(days, default=0) - 0.7, params.days - 0.3)
    fig.suptitle(
        f"Monitoring the churn model — {params.days} days of production, one panel per signal"
    )
    return save_figure(fig, path)


def _shade_phases(ax: Any, params: MonitoringParams) -> None:
    cov, concept = params.covariate_start_day, params.concept_start_day
    ax.axvspan(cov - 0.5, concept - 0.5, color="#f5b041", alpha=0.13, lw=0)
    ax.axvspan(concept - 0.5, params.days - 0.5, color="#e74c3c", alpha=0.10, lw=0)


def _quality(
    ax: Any,
    params: MonitoringParams,
    rules: AlertRules,
    table: pd.DataFrame,
    alerts: list[Alert],
    ref: Reference,
) -> None:
    """Each batch day's quality on its labels (drawn at the batch day); the alert floors."""
    for metric in QUALITY_METRICS:
        main = metric in ("roc_auc", "accuracy")
        ax.plot(
            table["day"], table[metric], marker="o", ms=3.5 if main else 2, lw=2 if main else 1,
            color=COLOURS[metric], label=NAMES[metric], zorder=3 if main else 2,
        )  # fmt: skip
    for metric, drop in (
        ("roc_auc", rules.auc_drop_alert),
        ("accuracy", rules.accuracy_drop_alert),
    ):
        ax.axhline(
            ref.quality[metric] - drop, color=COLOURS[metric], ls=":", lw=1.4,
            label=f"{NAMES[metric]} alert floor (reference − {drop:.3f})",
        )  # fmt: skip
    for alert in (a for a in alerts if a.kind == "quality" and a.new):
        ax.annotate(
            f"quality alert, raised on day {alert.day}\n(when these labels arrived)",
            (alert.data_day, alert.value), xytext=(alert.data_day + 1.5, 0.12), fontsize=8,
            arrowprops={"arrowstyle": "->", "lw": 1}, bbox={"fc": "white", "ec": "none"},
        )  # fmt: skip
    ax.text(0, 0.04, "quiet days", fontsize=9, color="#555")
    ax.text(params.covariate_start_day, 0.04, "covariate shift →", fontsize=9, color="#b9770e")
    ax.text(params.concept_start_day, 0.04, "+ concept drift →", fontsize=9, color="#a93226")
    unit_interval(ax, label="score on the day's labels")
    ax.set_title(f"{TITLES['quality']} ({params.label_delay_days} days later)")
    ax.legend(loc="lower left", bbox_to_anchor=(0, 0.1), ncol=3)


def _drift(ax: Any, params: MonitoringParams, table: pd.DataFrame) -> None:
    """Share of features drifted (bars, no labels needed), prediction drift (markers)."""
    ax.bar(table["day"], table["drift_share"], color=DRIFT, label="share of features drifted")
    ax.axhline(params.drift_share_alert, color="k", ls=":", lw=1.2, label="drift alert threshold")
    flagged = table[table["prediction_drift"].astype(bool)]
    ax.plot(
        flagged["day"], [0.85] * len(flagged), ls="none", marker="v", ms=6, color=PREDICTION,
        label="prediction drift (scores' distribution moved)",
    )  # fmt: skip
    unit_interval(ax, label="share of features")
    ax.set_title(TITLES["drift"])
    ax.legend(loc="upper left", ncol=3)


def _latency(ax: Any, params: MonitoringParams, table: pd.DataFrame) -> None:
    """p99 per day against the p99 SLO: the same percentile on both sides of the comparison."""
    slo = params.latency_p99_slo_ms
    ax.plot(
        table["day"], table["latency_p99_ms"], marker="o", ms=3, color=LATENCY,
        label=f"p99 per day ({params.clients} clients, {params.rows_per_request} rows/request)",
    )  # fmt: skip
    ax.axhline(slo, color="k", ls=":", lw=1.2, label=f"p99 SLO {slo:g} ms")
    from_zero(ax, headroom=1.15)
    if ax.get_ylim()[1] < slo * 1.15:
        ax.set_ylim(0, slo * 1.15)  # the SLO line always in view
    ax.set_ylabel("ms")
    ax.set_title(TITLES["latency"])
    ax.legend(loc="upper left", ncol=2)


def _alerts(ax: Any, alerts: list[Alert]) -> None:
    """A tick for every day a rule fired, a star where an incident began."""
    for row, kind in enumerate(("quality", "drift")):
        fired = [a.day for a in alerts if a.kind == kind]
        new = [a.day for a in alerts if a.kind == kind and a.new]
        colour = DRIFT if kind == "drift" else COLOURS["accuracy"]
        ax.plot(fired, [row] * len(fired), ls="none", marker="|", ms=14, color=colour,
                label=f"{kind} alert")  # fmt: skip
        ax.plot(new, [row] * len(new), ls="none", marker="*", ms=12, color=colour,
                label=f"new {kind} incident")  # fmt: skip
        for day in new:
            ax.annotate(f"day {day}", (day, row), xytext=(6, 4), textcoords="offset points")
    ax.set(yticks=[0, 1], yticklabels=["quality", "drift"], ylim=(-0.7, 1.7))
    ax.set_title(TITLES["alerts"])
