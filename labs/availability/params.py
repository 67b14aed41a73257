"""The availability lab's parameters (``params.yaml`` → ``availability``), checked on creation."""

from __future__ import annotations

from dataclasses import dataclass

from labs.common.proxy import HealthCheck, OutlierDetection, Retries


@dataclass(frozen=True)
class AvailabilityParams:
    """Parameters of the availability lab (``params.yaml`` → ``availability``)."""

    seed: int = 3
    train_rows: int = 2000
    replicas: int = 3
    rows_per_request: int = 20
    clients: int = 3  # continuous load: client threads
    pause_s: float = 0.005  # between one client's requests
    hold_s: float = 1.5  # load before and after each fault
    health_check_path: str = "/ready"  # readiness; "/health" is liveness (a counterfactual)
    hc_interval_s: float = 0.5
    hc_timeout_s: float = 1.0
    unhealthy_threshold: int = 2
    healthy_threshold: int = 1
    num_retries: int = 3  # 0: no retry policy at all (a counterfactual)
    per_try_timeout_s: float = 1.0
    drain_requests: int = 4  # big batches in flight on the replica when SIGTERM arrives
    drain_batch_rows: int = 1000
    recovery_timeout_s: float = 90.0  # a restarted replica must be healthy within this
    registered_model: str = "churn-model-availability-lab"

    def __post_init__(self) -> None:
        checks = {
            "replicas": 3 <= self.replicas <= 5,
            "rows_per_request": 1 <= self.rows_per_request <= 1000,
            "clients": 1 <= self.clients <= 8,
            "pause_s": self.pause_s >= 0,
            "hold_s": self.hold_s > 0,
            "hc_timeout_s": 0 < self.hc_timeout_s,
            "health_check_path": self.health_check_path.startswith("/"),
            "num_retries": self.num_retries >= 0,
            "drain_requests": self.drain_requests >= 1,
            "drain_batch_rows": 1 <= self.drain_batch_rows <= 1000,
        }
        bad = [f"availability.{k}={getattr(self, k)!r}" for k, ok in checks.items() if not ok]
        if bad:
            raise ValueError(f"invalid availability parameters: {', '.join(bad)}")

    def health_check(self) -> HealthCheck:
        """Envoy's active check of ``/ready`` (readiness, not mere liveness)."""
        return HealthCheck(
            path=self.health_check_path,
            interval_s=self.hc_interval_s,
            timeout_s=self.hc_timeout_s,
            unhealthy_threshold=self.unhealthy_threshold,
            healthy_threshold=self.healthy_threshold,
        )

    def retries(self) -> Retries | None:
        """Envoy's retry policy (another replica each time); None when ``num_retries`` is 0."""
        if self.num_retries == 0:
            return None
        return Retries(num_retries=self.num_retries, per_try_timeout_s=self.per_try_timeout_s)

    def outlier(self) -> OutlierDetection:
        return OutlierDetection(max_ejection_percent=100 // self.replicas)
