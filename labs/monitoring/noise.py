"""The quality alert's floors, fixed before the month is replayed: how much a day's ROC-AUC and
accuracy move by chance alone.

A day's quality is measured on a few hundred labelled rows, so it wobbles from day to day even
when nothing changed. A floor inside that wobble pages on-call for noise; a floor far below it
(a guessed "0.12") hides real decay and makes "drift without degradation" true by fiat. So the
lab measures the wobble first: the served model scores ``days`` batches of ``rows_per_day``
rows drawn from the training distribution on their own seeds (never the replayed month, never
the reference batch), and a quality alert fires when a day falls more than ``k`` standard
deviations of that noise below the reference.
"""

from __future__ import annotations

import statistics
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from labs.common.data import TARGET, make_churn_data
from labs.common.model import quality_metrics, split_xy

NOISE_METRICS = ("roc_auc", "accuracy")  # the metrics a quality alert watches
NOISE_SEED_OFFSET = 1000  # calibration days use seed + 1000 + i: apart from every replayed seed


@dataclass(frozen=True)
class QualityNoise:
    """The day-to-day spread of the quality metrics on no-drift days."""

    days: int
    rows_per_day: int
    mean: Mapping[str, float]
    sigma: Mapping[str, float]

    def drops(self, sigmas: float) -> dict[str, float]:
        """How far below the reference each metric may fall before it alerts: ``sigmas`` × σ."""
        return {metric: sigmas * self.sigma[metric] for metric in NOISE_METRICS}


def calibrate_quality_noise(model: Any, rows_per_day: int, days: int, seed: int) -> QualityNoise:
    """Score ``days`` no-drift batches of ``rows_per_day`` rows (seeds ``seed + 1000 + i``) and
    return the mean and standard deviation of each quality metric across them."""
    if days < 3:
        raise ValueError(f"the quality noise needs at least 3 calibration days, got {days}")
    values: dict[str, list[float]] = {metric: [] for metric in NOISE_METRICS}
    for i in range(days):
        batch = make_churn_data(rows_per_day, seed=seed + NOISE_SEED_OFFSET + i)
        proba = model.predict_proba(split_xy(batch)[0])[:, 1]
        quality = quality_metrics(batch[TARGET], proba)
        for metric in NOISE_METRICS:
            values[metric].append(float(quality[metric]))
    return QualityNoise(
        days=days,
        rows_per_day=rows_per_day,
        mean={m: statistics.fmean(v) for m, v in values.items()},
        sigma={m: statistics.stdev(v) for m, v in values.items()},
    )
