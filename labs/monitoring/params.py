"""The monitoring lab's parameters (``params.yaml`` → ``monitoring``), checked on creation."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from labs.common.data import ScheduledEvent
from labs.monitoring.monitor import AlertRules


@dataclass(frozen=True)
class MonitoringParams:
    """Parameters of the monitoring lab (``params.yaml`` → ``monitoring``)."""

    seed: int = 11
    train_rows: int = 3000
    reference_rows: int = 2000  # labelled, scored batch from the training distribution
    days: int = 30
    rows_per_day: int = 300
    rows_per_request: int = 20
    clients: int = 4  # concurrent HTTP clients replaying the traffic
    covariate_start_day: int = 10
    covariate_shift: Mapping[str, Any] = field(
        default_factory=lambda: {
            "monthly_charges": 12.0,
            "contract": {"month-to-month": 0.7, "one-year": 0.18, "two-year": 0.12},
        }
    )
    concept_start_day: int = 20
    concept_drift: float = 0.6
    label_delay_days: int = 3
    alpha: float = 0.01
    drift_share_alert: float = 0.25
    # A quality alert fires when a day's ROC-AUC or accuracy falls more than this many standard
    # deviations of its day-to-day noise below the reference; the noise is measured on
    # quality_noise_days no-drift batches of rows_per_day rows, before the month is replayed.
    quality_alert_sigmas: float = 4.0
    quality_noise_days: int = 20
    rolling_days: int = 3
    alert_within_days: int = 2
    latency_p99_slo_ms: float = 50.0
    bad_input_day: int = 5
    registered_model: str = "churn-model-monitoring-lab"

    def __post_init__(self) -> None:
        self.rules({"roc_auc": 0.1, "accuracy": 0.1})  # validates the other alert thresholds
        checks = {
            "quality_alert_sigmas": self.quality_alert_sigmas > 0,
            "quality_noise_days": self.quality_noise_days >= 3,
            "train_rows": self.train_rows >= 100,
            "reference_rows": self.reference_rows >= 100,
            "rows_per_day": self.rows_per_day >= 50,
            "rows_per_request": 1 <= self.rows_per_request <= 1000,
            "clients": 1 <= self.clients <= 32,
            "covariate_start_day": self.covariate_start_day >= 1,
            "concept_start_day": self.concept_start_day > self.covariate_start_day,
            # the labels of the first concept-drift day must arrive inside the replay
            "days": self.days > self.concept_start_day + self.label_delay_days,
            "concept_drift": 0 < self.concept_drift <= 1,
            "alert_within_days": self.alert_within_days >= 0,
            "latency_p99_slo_ms": self.latency_p99_slo_ms > 0,
            "bad_input_day": 0 <= self.bad_input_day < self.days,
        }
        bad = [f"monitoring.{k}={getattr(self, k)!r}" for k, ok in checks.items() if not ok]
        if bad:
            raise ValueError(f"invalid monitoring parameters: {', '.join(bad)}")

    def rules(self, quality_drops: Mapping[str, float]) -> AlertRules:
        """The monitoring job's thresholds; ``quality_drops`` (metric → how far below the
        reference it alerts) come from the noise calibration (:mod:`labs.monitoring.noise`)."""
        return AlertRules(
            alpha=self.alpha,
            drift_share_alert=self.drift_share_alert,
            auc_drop_alert=quality_drops["roc_auc"],
            accuracy_drop_alert=quality_drops["accuracy"],
            label_delay_days=self.label_delay_days,
            rolling_days=self.rolling_days,
        )

    def events(self) -> list[ScheduledEvent]:
        """The production stream's schedule: covariate shift, then concept drift on top."""
        return [
            ScheduledEvent(self.covariate_start_day, covariate_shift=dict(self.covariate_shift)),
            ScheduledEvent(self.concept_start_day, concept_drift=self.concept_drift),
        ]
