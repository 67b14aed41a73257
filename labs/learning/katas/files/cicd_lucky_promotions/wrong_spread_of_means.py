"""A wrong fix: the noise of the *mean* of the seeds (σ/√n) instead of one retrain's noise —
a candidate is one retrain, and it wins by luck far more often than the gate allows."""

import math
import statistics
from collections.abc import Sequence


def noise_margin(seed_scores: Sequence[float], sigmas: float) -> tuple[float, float]:
    sigma = statistics.stdev(seed_scores) / math.sqrt(len(seed_scores))
    return sigma, sigma
