"""What one retraining run is told: the documented thresholds (``params.yaml`` →
``retraining``, loaded strictly) plus the caller's choices (which batch, which model)."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field, fields
from typing import Any

from labs.common.params import params_for
from labs.common.registry import MODEL_NAME


@dataclass(frozen=True)
class RetrainParams:
    """The documented thresholds and the simulated stream (``params.yaml`` → ``retraining``)."""

    seed: int = 21
    rows_per_month: int = 4000
    stream: Mapping[int, Mapping[str, Any]] = field(default_factory=dict)
    drift_share_threshold: float = 0.25
    quality_threshold: float = 0.75
    min_new_rows: int = 10_000
    margin: float = 0.01
    absolute_floor: float = 0.7
    holdout_fraction: float = 0.3
    recent_weight: float = 10.0

    def __post_init__(self) -> None:
        stream = {int(k): dict(v or {}) for k, v in self.stream.items()}
        object.__setattr__(self, "stream", stream)
        _check_ranges(self, _PARAM_RANGES)


@dataclass(frozen=True)
class RetrainConfig(RetrainParams):
    """One retraining run: the ``retraining`` params plus what the caller (the flow's
    parameters, the lab) chooses — which batch, where to register and to audit."""

    month: int = 2
    batch_path: str | None = None
    force: bool = False
    label_noise: float = 0.0
    model_name: str = MODEL_NAME
    experiment: str = "retraining"
    audit_log: str = "reports/retraining/audit.jsonl"
    reference_path: str = "data/prepared/train.csv"
    quarantine_dir: str = "data/quarantine"

    def __post_init__(self) -> None:
        super().__post_init__()
        _check_ranges(self, _RUN_RANGES)

    @classmethod
    def from_params(cls, **overrides: Any) -> RetrainConfig:
        """``params.yaml`` → ``retraining`` (strict), then ``overrides``; ``None`` is "unset"."""
        given = {k: v for k, v in overrides.items() if v is not None}
        documented = {f.name for f in fields(RetrainParams)}
        params = params_for(
            RetrainParams, "retraining", **{k: v for k, v in given.items() if k in documented}
        )
        return cls(**{**asdict(params), **given})


_PARAM_RANGES: dict[str, Callable[[Any], bool]] = {
    "drift_share_threshold": lambda v: 0 < v <= 1,
    "quality_threshold": lambda v: 0 <= v <= 1,
    "min_new_rows": lambda v: v >= 1,
    "margin": lambda v: 0 <= v < 1,
    "absolute_floor": lambda v: 0 <= v <= 1,
    "holdout_fraction": lambda v: 0.05 <= v <= 0.9,
    "recent_weight": lambda v: v > 0,
}
_RUN_RANGES: dict[str, Callable[[Any], bool]] = {
    "month": lambda v: v >= 1,
    "label_noise": lambda v: 0 <= v <= 0.5,
}


def _check_ranges(config: Any, ranges: Mapping[str, Callable[[Any], bool]]) -> None:
    bad = [name for name, ok in ranges.items() if not ok(getattr(config, name))]
    if bad:
        raise ValueError(
            "retraining parameters out of range: "
            + ", ".join(f"{b}={getattr(config, b)!r}" for b in bad)
        )
