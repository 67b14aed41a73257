"""The daily checks: drift today, quality when the labels arrive, alerts with their reason.

Each day, for that day's batch of logged predictions, :class:`Monitor`

1. tests data drift (every feature) and prediction drift (the scores) against the reference
   with :func:`labs.common.drift.detect_drift` (Cramér–von Mises, two-sample chi-square,
   Bonferroni) — no labels needed, so this is the early warning;
2. measures quality (:func:`labs.common.model.quality_metrics`: accuracy, precision, recall,
   ROC-AUC …) on the batch of ``label_delay_days`` ago, whose labels have just arrived — the
   only signal that sees concept drift;
3. compares both with thresholds and raises :class:`Alert` objects that carry the number that
   decided and a readable reason.

An alert repeats every day its condition holds (as a Prometheus rule keeps firing); ``new``
marks the first day of an incident, so retraining is started once, not daily. What happens
to the alerts (the alert log, ``/metrics``, the retraining hook) is in ``alerts.py``; the job
that runs the checks day after day is ``steps.py``.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, Literal

import pandas as pd

from labs.common.data import (
    CATEGORICAL_FEATURES,
    DAY,
    FEATURES,
    LABEL,
    NUMERIC_FEATURES,
    PROBA,
    TARGET,
)
from labs.common.model import quality_metrics

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
        # labs.common.drift.detect_drift, unless given another with its signature and result.
        self.drift_test = drift_test
        # Kinds that fired the day before the first checked day (from the alert log), so a
        # job that runs one day at a time still knows whether an incident is new.
        self._firing: set[str] = set(firing)

    def check_day(self, today: int, scored: pd.DataFrame) -> DayReport:
        """Run the day's checks on ``scored`` (the log joined with outcomes, all days)."""
        start = time.perf_counter()
        report = self.measure_day(today, scored)
        report.alerts = self.alerts_for(report)
        report.seconds = time.perf_counter() - start
        return report

    def measure_day(self, today: int, scored: pd.DataFrame) -> DayReport:
        """The day's numbers — drift of its batch, quality of the batch whose labels arrived —
        without alerts. It reads only the reference and the rules, never the alert state, so
        days can be measured in any order or in parallel (a backfill on Dask); the alerts
        then follow day by day in order (:meth:`alerts_for`)."""
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
        report.seconds = time.perf_counter() - start
        return report

    def alerts_for(self, report: DayReport) -> list[Alert]:
        """The alerts of a measured day; call in day order (an alert is new only if its kind
        was not firing the day before)."""
        alerts = self._drift_alerts(report)
        if report.labelled_day is not None:
            alerts += self._quality_alerts(report)
        return alerts

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
