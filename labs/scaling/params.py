"""Parameters of the scaling lab (``params.yaml`` → ``scaling``), prices included."""

from __future__ import annotations

from dataclasses import dataclass

from labs.scaling.costs import Prices
from labs.scaling.hpa import HpaPolicy


@dataclass(frozen=True)
class ScalingParams:
    """Every knob of the scaling lab; the prices carry the date they were taken."""

    seed: int = 14
    train_rows: int = 4000
    holdout_rows: int = 2000
    registered_model: str = "churn-model-scaling-lab"
    # 1. batching
    inprocess_batch_sizes: tuple[int, ...] = (1, 4, 16, 64, 256, 1024)
    http_batch_sizes: tuple[int, ...] = (1, 10, 100, 1000)
    point_seconds: float = 0.4
    batching_gain_min: float = 10.0
    # 2. micro-batching
    microbatch_max_wait_ms: float = 5.0
    microbatch_max_rows: int = 256
    microbatch_loads: tuple[int, ...] = (1, 8, 32)
    load_seconds: float = 1.0
    microbatch_gain_min: float = 1.5
    # 3. workers
    workers_clients: int = 4
    workers_batch_rows: int = 200
    workers_seconds: float = 1.5
    workers_gain_min: float = 0.1
    # 4. autoscaling
    hpa_days: int = 2
    hpa_rows_per_day: int = 200000
    hpa_peak_replicas: float = 12.0
    hpa_peak_hour: float = 19.0
    hpa_trough_share: float = 0.15
    hpa_spike: tuple[int, float, float, float] = (1, 12.0, 1.0, 2.0)
    hpa_target_utilization: float = 0.6
    hpa_tolerance: float = 0.1
    hpa_sync_period_s: float = 15.0
    hpa_downscale_window_s: float = 300.0
    hpa_min_replicas: int = 2
    hpa_max_replicas: int = 100
    hpa_pod_ready_s: float = 30.0
    # 5. smaller models
    model_sizes: tuple[str, ...] = (
        "logistic_regression",
        "random_forest:3:2",
        "random_forest:20:6",
        "random_forest:100:10",
    )
    auc_budget: float = 0.01
    latency_repeats: int = 15
    with_onnx: bool = True
    # 6. edge vs cloud, costs
    cloud_rtt_ms: float = 40.0
    prices_taken: str = "2024-06-01"
    serverless_per_million_requests: float = 0.20
    serverless_per_gb_second: float = 0.0000166667
    serverless_memory_gb: float = 1.0
    serverless_billing_ms: float = 1.0
    instance_hourly: float = 0.085
    reserved_hourly: float = 0.0536
    spot_hourly: float = 0.034
    spot_interruptions_per_hour: float = 0.05
    overprovision: float = 3.0
    production_training_rows: int = 100_000_000
    checkpoint_hours: float = 1.0

    def __post_init__(self) -> None:
        if max(self.http_batch_sizes) > 1000:
            raise ValueError("http_batch_sizes: the serving API accepts at most 1000 rows")
        if min(self.inprocess_batch_sizes) != 1 or min(self.http_batch_sizes) != 1:
            raise ValueError("batch sizes must start at 1 (row by row is the baseline)")
        if not self.hpa_peak_replicas > 0:
            raise ValueError(f"hpa_peak_replicas must be > 0, got {self.hpa_peak_replicas!r}")
        if not 0 < self.hpa_target_utilization <= 1:
            raise ValueError("hpa_target_utilization must be in (0, 1]")
        if len(self.model_sizes) < 2:
            raise ValueError("model_sizes needs at least two candidates")

    def policy(self, *, tolerance: float | None = None, window_s: float | None = None) -> HpaPolicy:
        return HpaPolicy(
            target_utilization=self.hpa_target_utilization,
            tolerance=self.hpa_tolerance if tolerance is None else tolerance,
            sync_period_s=self.hpa_sync_period_s,
            downscale_window_s=self.hpa_downscale_window_s if window_s is None else window_s,
            min_replicas=self.hpa_min_replicas,
            max_replicas=self.hpa_max_replicas,
            pod_ready_s=self.hpa_pod_ready_s,
        )

    def prices(self) -> Prices:
        return Prices(
            taken=self.prices_taken,
            serverless_per_million_requests=self.serverless_per_million_requests,
            serverless_per_gb_second=self.serverless_per_gb_second,
            serverless_memory_gb=self.serverless_memory_gb,
            serverless_billing_ms=self.serverless_billing_ms,
            instance_hourly=self.instance_hourly,
            reserved_hourly=self.reserved_hourly,
            spot_hourly=self.spot_hourly,
            spot_interruptions_per_hour=self.spot_interruptions_per_hour,
        )
