"""The CI gate's promotion margin: how much a candidate must beat the champion by.

``seed_scores`` are the champion's ROC-AUC over retrains of the same code with other seeds
(the metric's noise); ``sigmas`` is the gate's setting. Returns (the noise σ, the margin).
"""

import statistics
from collections.abc import Sequence


def noise_margin(seed_scores: Sequence[float], sigmas: float) -> tuple[float, float]:
    # A retrain of the same code on another seed scores differently by chance: about half of
    # them "beat" the champion by some amount. Only a gain of several σ of that noise is
    # evidence of a better model.
    if len(seed_scores) < 3:
        raise ValueError(f"seed noise needs at least 3 seeds, got {len(seed_scores)}")
    sigma = statistics.stdev(seed_scores)
    return sigma, sigmas * sigma
