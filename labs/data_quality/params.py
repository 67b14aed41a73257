"""Parameters of the data-quality lab (``params.yaml`` → ``data_quality``)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from labs.common.params import check_at_least, check_open_unit


@dataclass(frozen=True)
class DataQualityParams:
    """Parameters of the data-quality lab (``params.yaml`` → ``data_quality``)."""

    seed: int = 13
    train_rows: int = 3000
    batch_rows: int = 1000
    unit_factors: tuple[float, ...] = (2.0, 3.0, 100.0)
    incident_factor: float = 100.0
    renamed_categories: Mapping[str, Mapping[str, str]] = field(
        default_factory=lambda: {"payment_method": {"credit-card": "card"}}
    )
    dirty_rate: float = 0.05
    bad_batch_rate: float = 0.25
    max_bad_share: float = 0.10
    min_flip_rate: float = 0.30
    alpha: float = 0.05
    stream_days: int = 12
    rows_per_day: int = 300
    incident_day: int = 4
    hotfix_day: int = 8
    recovery_tolerance: float = 0.05

    def __post_init__(self) -> None:
        object.__setattr__(self, "unit_factors", tuple(float(f) for f in self.unit_factors))
        check_at_least(
            self, "data_quality", {"train_rows": 200, "batch_rows": 100, "rows_per_day": 50}
        )
        if not self.unit_factors or any(f <= 0 or f == 1 for f in self.unit_factors):
            raise ValueError(
                f"data_quality.unit_factors must be > 0 and != 1, got {self.unit_factors!r}"
            )
        check_open_unit(
            self,
            "data_quality",
            ("dirty_rate", "bad_batch_rate", "max_bad_share", "min_flip_rate", "alpha"),
        )
        if not self.dirty_rate <= self.max_bad_share < self.bad_batch_rate:
            raise ValueError(
                "data_quality needs dirty_rate <= max_bad_share < bad_batch_rate, got "
                f"{self.dirty_rate}, {self.max_bad_share}, {self.bad_batch_rate}"
            )
        if not 0 < self.incident_day < self.hotfix_day < self.stream_days:
            raise ValueError(
                "data_quality needs 0 < incident_day < hotfix_day < stream_days, got "
                f"{self.incident_day}, {self.hotfix_day}, {self.stream_days}"
            )
