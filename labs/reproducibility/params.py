"""Parameters of the reproducibility lab (``params.yaml`` → ``reproducibility``)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from labs.common.model import TrainParams


@dataclass(frozen=True)
class ReproducibilityParams:
    """Parameters of the reproducibility lab (``params.yaml`` → ``reproducibility``)."""

    seed: int = 42
    other_seed: int = 43
    model_type: str = "random_forest"  # a model whose training uses the seed
    n_estimators: int = 30
    max_depth: int = 6
    blas_vector_size: int = 200_000
    blas_threads: tuple[int, ...] = (1, 2)
    bootstrap_tasks: int = 16
    n_jobs: int = 2
    hash_seeds: tuple[int, ...] = (0, 1, 2, 3)
    summation_values: int = 100_000
    digest_rows: int = 12_000
    digest_changed_from: int = 10_000
    changed_param: str = "evaluate.threshold=0.4"
    command_timeout_s: float = 300.0

    def __post_init__(self) -> None:
        for name in ("blas_threads", "hash_seeds"):
            object.__setattr__(self, name, tuple(int(v) for v in getattr(self, name)))
        if self.seed == self.other_seed:
            raise ValueError("reproducibility.other_seed must differ from seed")
        if len(set(self.blas_threads)) < 2 or min(self.blas_threads) < 1:
            raise ValueError(
                f"reproducibility.blas_threads needs two counts >= 1, got {self.blas_threads}"
            )
        if len(set(self.hash_seeds)) < 2:
            raise ValueError("reproducibility.hash_seeds needs at least two hash seeds")
        if self.n_jobs < 2 or self.bootstrap_tasks < 2:
            raise ValueError("reproducibility.n_jobs and bootstrap_tasks must be >= 2")
        if not 0 < self.digest_changed_from < self.digest_rows:
            raise ValueError("reproducibility.digest_changed_from must be inside digest_rows")
        key, sep, _ = self.changed_param.partition("=")
        if not sep or "." not in key:
            raise ValueError(f"reproducibility.changed_param {self.changed_param!r} is not k.v=x")

    def train_params(self, seed: int | None = None) -> TrainParams:
        from labs.common.model import TrainParams

        return TrainParams(
            model_type=self.model_type,  # type: ignore[arg-type]
            n_estimators=self.n_estimators,
            max_depth=self.max_depth,
            seed=self.seed if seed is None else seed,
        )
