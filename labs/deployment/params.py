"""The deployment lab's parameters (``params.yaml`` → ``deployment``), checked on creation."""

from __future__ import annotations

from dataclasses import dataclass

from labs.deployment.analysis import AnalysisRules


@dataclass(frozen=True)
class DeploymentParams:
    """Parameters of the deployment lab (``params.yaml`` → ``deployment``)."""

    seed: int = 7
    train_rows: int = 2000
    canary_steps: tuple[int, ...] = (5, 10, 25, 50, 100)  # percent of traffic, Argo setWeight
    requests_per_step: int = 300
    rows_per_request: int = 10
    clients: int = 4
    min_canary_requests: int = 5  # fewer in a step: no data, and no data is not success
    max_error_rate: float = 0.01
    max_p99_ms: float = 1000.0
    max_churn_share_diff: float = 0.12  # |canary churn share − champion's|, per step
    split_alpha: float = 0.001  # the binomial CI of each step's observed split
    shadow_requests: int = 150
    min_shadow_agreement: float = 0.9
    switch_hold_s: float = 1.5  # continuous load before, between and after the switches
    load_clients: int = 2  # blue-green's continuous load (threads in this process)
    max_rollback_s: float = 2.0
    registered_model: str = "churn-model-deployment-lab"

    def __post_init__(self) -> None:
        steps = self.canary_steps
        checks = {
            "canary_steps": bool(steps)
            and all(0 < a < b for a, b in zip(steps, steps[1:], strict=False))
            and steps[0] > 0
            and steps[-1] == 100,
            "requests_per_step": self.requests_per_step >= 50,
            "rows_per_request": 1 <= self.rows_per_request <= 100,
            "clients": 1 <= self.clients <= 16,
            "split_alpha": 0 < self.split_alpha < 0.5,
            "shadow_requests": self.shadow_requests >= 20,
            "switch_hold_s": self.switch_hold_s > 0,
            "load_clients": 1 <= self.load_clients <= 8,
        }
        bad = [f"deployment.{k}={getattr(self, k)!r}" for k, ok in checks.items() if not ok]
        if bad:
            raise ValueError(
                f"invalid deployment parameters: {', '.join(bad)} (canary steps rise strictly "
                "and end at 100)"
            )
        self.rules()

    def rules(self) -> AnalysisRules:
        """The canary analysis's thresholds (Flagger's ``metrics`` / Argo's AnalysisTemplate)."""
        return AnalysisRules(
            min_requests=self.min_canary_requests,
            max_error_rate=self.max_error_rate,
            max_p99_ms=self.max_p99_ms,
            max_churn_share_diff=self.max_churn_share_diff,
        )
