"""Parameters of the cicd lab and of the project's CI gate (``params.yaml`` → ``cicd``)."""

from __future__ import annotations

from dataclasses import dataclass

from labs.common.params import check_at_least, check_open_unit


@dataclass(frozen=True)
class CicdParams:
    """One section for the lab and for ``make ci``'s gate: the same thresholds in both."""

    seed: int = 17
    train_rows: int = 3000
    holdout_rows: int = 2000
    new_data_rows: int = 3000
    offline_fraction: float = 0.25
    C: float = 1.0
    noise_seeds: int = 8
    noise_sigmas: float = 2.0
    noop_pairs: int = 20
    max_false_promotion: float = 0.1
    min_roc_auc: float = 0.75
    min_accuracy: float = 0.75
    max_offline_gap: float = 0.05
    retention_calls_churned: float = 2.0
    retention_calls_stayed: float = 0.2
    bug_divisor: float = 100.0
    model_name: str = "cicd-churn-lab"
    ci_model_name: str = "cicd-churn"

    def __post_init__(self) -> None:
        check_at_least(
            self,
            "cicd",
            {
                "train_rows": 400,
                "holdout_rows": 200,
                "new_data_rows": 100,
                "noise_seeds": 3,
                "noop_pairs": 10,
            },
        )
        if self.noise_sigmas < 2:
            raise ValueError(
                f"cicd.noise_sigmas must be >= 2 (the margin is at least 2σ of seed noise), "
                f"got {self.noise_sigmas!r}"
            )
        if not 0.1 <= self.offline_fraction <= 0.5:
            raise ValueError(
                f"cicd.offline_fraction must be in [0.1, 0.5], got {self.offline_fraction!r}"
            )
        check_open_unit(
            self, "cicd", ("min_roc_auc", "min_accuracy", "max_offline_gap", "max_false_promotion")
        )
        if self.C <= 0:
            raise ValueError(f"cicd.C must be > 0, got {self.C!r}")
        if self.bug_divisor <= 0 or self.bug_divisor == 1:
            raise ValueError(f"cicd.bug_divisor must be > 0 and != 1, got {self.bug_divisor!r}")
        if self.model_name == self.ci_model_name:
            raise ValueError("cicd.model_name and cicd.ci_model_name must differ")
