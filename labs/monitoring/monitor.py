"""Batch monitoring, one day at a time: drift today, quality when the labels arrive, alerts.

Each day the job reads the prediction log and, for that day's batch,

1. tests data drift (every feature) and prediction drift (the scores) against the reference
   with the drift lab's tests (:func:`labs.common.drift.detect_drift`: K-S, two-sample
   chi-square, Bonferroni) — no labels needed, so this is the early warning;
2. measures quality (accuracy, precision, recall, ROC-AUC) on the batch of ``label_delay_days``
   ago, whose labels have just arrived — the only signal that sees concept drift;
3. compares both with thresholds and raises alerts: written to an alert log (JSONL, with
   reason and value), pushed to the server's ``/metrics``, and — for a new quality incident —
   handed to ``on_quality_alert`` (e.g. start the retraining flow).

An alert repeats every day its condition holds (as a Prometheus rule keeps firing); ``new``
marks the first day of an incident, so retraining is started once, not daily. The job is
idempotent: re-running a day neither duplicates alerts nor starts retraining again.

:func:`run_monitor_job` wires the steps; the Prefect flow ``monitor`` (``flow.py``) runs the
same wiring with each step as a task, the lab with plain functions.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass, field, fields, replace
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pandas as pd

from labs.common.data import (
    CATEGORICAL_FEATURES,
    CATEGORIES,
    DAY,
    FEATURES,
    NUMERIC_FEATURES,
    TARGET,
)
from labs.monitoring.predlog import LABEL, PROBA, read_predictions

AlertKind = Literal["drift", "quality"]
QUALITY_METRICS = ("accuracy", "precision", "recall", "roc_auc")


@dataclass(frozen=True)
class AlertRules:
    """Thresholds of the daily checks (``params.yaml`` → ``monitoring``)."""

    alpha: float = 0.01  # family-wise per day, Bonferroni-split over features + prediction
    drift_share_alert: float = 0.25  # share of features drifted that raises a drift alert
    auc_drop_alert: float = 0.12  # ROC-AUC below reference minus this raises a quality alert
    accuracy_drop_alert: float = 0.15  # accuracy below reference minus this, likewise
    label_delay_days: int = 3  # labels of day d arrive on day d + delay
    rolling_days: int = 3  # window of the rolling accuracy / ROC-AUC gauges
    min_labelled_rows: int = 50  # fewer labelled rows than this: no quality verdict

    def __post_init__(self) -> None:
        checks = {
            "alpha": 0 < self.alpha < 0.5,
            "drift_share_alert": 0 < self.drift_share_alert <= 1,
            "auc_drop_alert": 0 < self.auc_drop_alert < 1,
            "accuracy_drop_alert": 0 < self.accuracy_drop_alert < 1,
            "label_delay_days": self.label_delay_days >= 0,
            "rolling_days": self.rolling_days >= 1,
            "min_labelled_rows": self.min_labelled_rows >= 2,
        }
        bad = [f"monitoring.{k}={getattr(self, k)!r}" for k, ok in checks.items() if not ok]
        if bad:
            raise ValueError(f"invalid alert rules: {', '.join(bad)}")


@dataclass(frozen=True)
class Alert:
    """One alert: what fired, on which day, about which batch, with the number that decided."""

    kind: AlertKind
    day: int  # the day the job raised it
    data_day: int  # the day of the batch it is about (earlier for quality: labels are late)
    metric: str
    value: float
    threshold: float
    reason: str
    new: bool = True  # first day of an incident (the kind did not fire the day before)


@dataclass(frozen=True)
class Reference:
    """What "normal" looks like: a labelled, scored batch from the training distribution."""

    frame: pd.DataFrame  # FEATURES + TARGET + PROBA + LABEL
    quality: dict[str, float]

    @classmethod
    def from_scored(cls, frame: pd.DataFrame, threshold: float = 0.5) -> Reference:
        """Reference from rows that carry features, the true label and the model's score."""
        missing = [c for c in (*FEATURES, TARGET, PROBA) if c not in frame.columns]
        if missing:
            raise ValueError(f"reference lacks columns {missing}")
        out = frame[[*FEATURES, TARGET, PROBA]].copy()
        out[LABEL] = (out[PROBA] >= threshold).astype(int)
        return cls(out, quality_metrics(out[TARGET], out[PROBA], threshold))


@dataclass
class DayReport:
    """Everything the job found on one day."""

    day: int
    rows: int
    drift_share: float
    drifted_features: list[str]
    prediction_drift: bool
    prediction_p_value: float
    drift_threshold: float  # the per-column p-value threshold (Bonferroni)
    labelled_day: int | None = None  # the batch whose labels arrived today
    quality: dict[str, float] = field(default_factory=dict)  # of labelled_day
    rolling: dict[str, float] = field(default_factory=dict)  # over the last labelled days
    alerts: list[Alert] = field(default_factory=list)
    seconds: float = 0.0


def quality_metrics(
    y_true: Sequence[int] | pd.Series, proba: Sequence[float] | pd.Series, threshold: float = 0.5
) -> dict[str, float]:
    """Accuracy, precision, recall, ROC-AUC (NaN with a single class) and the row count."""
    from sklearn.metrics import accuracy_score, precision_score, recall_score, roc_auc_score

    y = np.asarray(y_true, dtype=int)
    p = np.asarray(proba, dtype=float)
    pred = (p >= threshold).astype(int)
    return {
        "accuracy": float(accuracy_score(y, pred)),
        "precision": float(precision_score(y, pred, zero_division=0)),
        "recall": float(recall_score(y, pred, zero_division=0)),
        "roc_auc": float(roc_auc_score(y, p)) if len(set(y.tolist())) == 2 else math.nan,
        "rows": float(len(y)),
    }


def join_outcomes(predictions: pd.DataFrame, outcomes: pd.DataFrame) -> pd.DataFrame:
    """Attach each logged prediction's day and (possibly missing) true label.

    ``outcomes`` has ``request_id, row_index, day`` and ``churned`` (NaN until known): in
    production, the label feed joined on the prediction's id. Predictions without an outcome
    row are dropped (they belong to no monitored day).
    """
    needed = ["request_id", "row_index", DAY, TARGET]
    missing = [c for c in needed if c not in outcomes.columns]
    if missing:
        raise ValueError(f"outcomes lack columns {missing}; they have {list(outcomes.columns)}")
    return predictions.merge(
        outcomes[needed], on=["request_id", "row_index"], how="inner", validate="one_to_one"
    )


class Monitor:
    """The daily job's state: reference, rules, and yesterday's alerts (to mark new ones)."""

    def __init__(
        self,
        reference: Reference,
        rules: AlertRules,
        firing: Iterable[str] = (),
        drift_test: Callable[..., Any] | None = None,
    ) -> None:
        self.reference = reference
        self.rules = rules
        # The drift lab's detect_drift, unless given another with its signature and result.
        self.drift_test = drift_test
        # Kinds that fired the day before the first checked day (from the alert log), so a
        # job that runs one day at a time still knows whether an incident is new.
        self._firing: set[str] = set(firing)

    def check_day(self, today: int, scored: pd.DataFrame) -> DayReport:
        """Run the day's checks on ``scored`` (the log joined with outcomes, all days)."""
        from labs.common.drift import detect_drift

        drift_test = self.drift_test or detect_drift
        start = time.perf_counter()
        rules, ref = self.rules, self.reference
        batch = scored[scored[DAY] == today]
        if batch.empty:
            raise ValueError(f"no logged predictions for day {today}")
        columns = [*FEATURES, PROBA]
        drift = drift_test(
            ref.frame[columns],
            batch[columns],
            numeric=NUMERIC_FEATURES,
            categorical=CATEGORICAL_FEATURES,
            monitored=[PROBA],
            alpha=rules.alpha,
        )
        report = DayReport(
            day=today,
            rows=len(batch),
            drift_share=drift.drift_share,
            drifted_features=sorted(drift.drifted_features),
            prediction_drift=drift[PROBA].drifted,
            prediction_p_value=drift[PROBA].p_value,
            drift_threshold=drift[PROBA].threshold,
        )
        alerts = self._drift_alerts(report)

        # Labels arrive late: today we learn the truth about the batch of `delay` days ago.
        labelled_day = today - rules.label_delay_days
        if labelled_day >= 0:
            labelled = scored[(scored[DAY] == labelled_day) & scored[TARGET].notna()]
            window = scored[
                scored[DAY].between(labelled_day - rules.rolling_days + 1, labelled_day)
                & scored[TARGET].notna()
            ]
            if len(labelled) >= rules.min_labelled_rows:
                report.labelled_day = labelled_day
                report.quality = quality_metrics(labelled[TARGET], labelled[PROBA])
                report.rolling = quality_metrics(window[TARGET], window[PROBA])
                alerts += self._quality_alerts(report)
        report.alerts = alerts
        report.seconds = time.perf_counter() - start
        return report

    def _drift_alerts(self, r: DayReport) -> list[Alert]:
        threshold = self.rules.drift_share_alert
        reasons = []
        if r.drift_share >= threshold:
            reasons.append(
                f"drift share {r.drift_share:.2f} >= {threshold:g} "
                f"({', '.join(r.drifted_features)})"
            )
        if r.prediction_drift:
            reasons.append(
                f"prediction drift p={r.prediction_p_value:.2g} < {r.drift_threshold:.2g}"
            )
        if not reasons:
            self._firing.discard("drift")
            return []
        metric, value = (
            ("drift_share", r.drift_share)
            if r.drift_share >= threshold
            else ("prediction_p_value", r.prediction_p_value)
        )
        limit = threshold if metric == "drift_share" else r.drift_threshold
        return [self._raise("drift", r.day, r.day, metric, value, limit, "; ".join(reasons))]

    def _quality_alerts(self, r: DayReport) -> list[Alert]:
        ref, rules, q = self.reference.quality, self.rules, r.quality
        breaches = []
        for metric, drop in (
            ("roc_auc", rules.auc_drop_alert),
            ("accuracy", rules.accuracy_drop_alert),
        ):
            floor = ref[metric] - drop
            if math.isfinite(q[metric]) and q[metric] < floor:
                breaches.append((metric, q[metric], floor, ref[metric], drop))
        if not breaches:
            self._firing.discard("quality")
            return []
        reason = "; ".join(
            f"{m} {v:.3f} < {f:.3f} (reference {rv:.3f} − {d:g})" for m, v, f, rv, d in breaches
        )
        reason += f", labels of day {r.labelled_day}"
        metric, value, floor, _, _ = breaches[0]
        data_day = r.day if r.labelled_day is None else r.labelled_day
        return [self._raise("quality", r.day, data_day, metric, value, floor, reason)]

    def _raise(
        self, kind: AlertKind, day: int, data_day: int, metric: str, value: float,
        threshold: float, reason: str,
    ) -> Alert:  # fmt: skip
        new = kind not in self._firing
        self._firing.add(kind)
        return Alert(kind, day, data_day, metric, float(value), float(threshold), reason, new)


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


# --- the job's steps (the Prefect flow `monitor` wraps each as a task) ----------------------


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
) -> list[DayReport]:
    """Check each day in order; publish alerts and gauges; on each *new* quality incident
    call ``on_quality_alert`` and start ``job.retrain_deployment`` if set."""
    steps = steps or MonitorSteps()
    scored, reference = steps.load_inputs(job)
    days = sorted(int(d) for d in scored[DAY].unique()) if job.days is None else list(job.days)
    if not days:
        return []
    monitor = Monitor(reference, job.rules, firing=firing_before(job.alert_log, days[0]))
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


# --- the alert log, the server's gauges, the retraining hook ------------------------------


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


def _key(alert: Alert) -> tuple[str, int, int, str]:
    return (alert.kind, alert.day, alert.data_day, alert.metric)


def _finite(value: float | None) -> float | None:
    return float(value) if value is not None and math.isfinite(value) else None
