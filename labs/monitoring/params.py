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
    auc_drop_alert: float = 0.12
    accuracy_drop_alert: float = 0.15
    rolling_days: int = 3
    alert_within_days: int = 2
    latency_p99_slo_ms: float = 50.0
    bad_input_day: int = 5
    registered_model: str = "churn-model-monitoring-lab"

    def __post_init__(self) -> None:
        self.rules()  # validates the alert thresholds
        checks = {
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

    def rules(self) -> AlertRules:
        """The monitoring job's thresholds."""
        return AlertRules(
            alpha=self.alpha,
            drift_share_alert=self.drift_share_alert,
            auc_drop_alert=self.auc_drop_alert,
            accuracy_drop_alert=self.accuracy_drop_alert,
            label_delay_days=self.label_delay_days,
            rolling_days=self.rolling_days,
        )

    def events(self) -> list[ScheduledEvent]:
        """The production stream's schedule: covariate shift, then concept drift on top."""
        return [
            ScheduledEvent(self.covariate_start_day, covariate_shift=dict(self.covariate_shift)),
            ScheduledEvent(self.concept_start_day, concept_drift=self.concept_drift),
        ]
