"""A/B testing, simulated: sample size from a power calculation, a two-proportion z-test at the
planned horizon, and what peeking after every batch does to the false-positive rate.

Each simulated experiment splits customers evenly into two arms and observes churn (0/1) in
``looks`` equal batches. Arm A churns at the production stream's measured rate; arm B at that
rate minus the uplift (a real effect) or at the same rate (an A/A test: any "significant"
result is a false positive). Everything is vectorised: thousands of experiments take
milliseconds.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Rate:
    """A share of simulated experiments with its Wilson 95 % interval."""

    value: float
    low: float
    high: float
    n: int

    def covers(self, x: float) -> bool:
        return self.low <= x <= self.high


def rate(hits: np.ndarray) -> Rate:
    from statsmodels.stats.proportion import proportion_confint

    k, n = int(np.sum(hits)), int(np.size(hits))
    low, high = proportion_confint(k, n, alpha=0.05, method="wilson")
    return Rate(k / n, float(low), float(high), n)


def sample_size(p_control: float, p_treatment: float, alpha: float, power: float) -> int:
    """Customers per arm for a two-sided two-proportion test (Cohen's h, normal power)."""
    from statsmodels.stats.power import NormalIndPower
    from statsmodels.stats.proportion import proportion_effectsize

    effect = abs(proportion_effectsize(p_control, p_treatment))
    n = NormalIndPower().solve_power(effect, alpha=alpha, power=power, ratio=1.0)
    return int(np.ceil(n))


def z_statistics(
    rng: np.random.Generator, p_a: float, p_b: float, n_per_arm: int, looks: int, sims: int
) -> np.ndarray:
    """Pooled two-proportion z at each look (sims × looks): batches of n_per_arm/looks."""
    batch = np.diff(np.linspace(0, n_per_arm, looks + 1).round().astype(int))
    a = np.cumsum(rng.binomial(batch, p_a, size=(sims, looks)), axis=1)
    b = np.cumsum(rng.binomial(batch, p_b, size=(sims, looks)), axis=1)
    n = np.cumsum(batch)
    pooled = (a + b) / (2 * n)
    se = np.sqrt(pooled * (1 - pooled) * (2 / n))
    with np.errstate(divide="ignore", invalid="ignore"):
        z = (a / n - b / n) / se
    return np.nan_to_num(z)


def pocock_boundary(looks: int, alpha: float, seed: int, sims: int = 200_000) -> float:
    """The constant |z| boundary that keeps the chance of crossing at any of ``looks`` equally
    spaced looks at ``alpha`` under no effect (Pocock), from simulated Brownian paths."""
    rng = np.random.default_rng(seed)
    steps = rng.standard_normal((sims, looks))
    z = np.cumsum(steps, axis=1) / np.sqrt(np.arange(1, looks + 1))
    return float(np.quantile(np.abs(z).max(axis=1), 1 - alpha))


def check_ztest(z_final: float, a: int, b: int, n: int) -> float:
    """statsmodels' proportions_ztest on one experiment's final counts (a cross-check)."""
    from statsmodels.stats.proportion import proportions_ztest

    stat, _ = proportions_ztest([a, b], [n, n])
    return float(stat - z_final)


def simulate(
    p_control: float,
    uplift: float,
    alpha: float,
    power: float,
    looks: int,
    sims: int,
    seed: int,
    z_statistics: Callable[..., np.ndarray] = z_statistics,
) -> dict[str, object]:
    """Power, A/A false positives at the fixed horizon, with peeking, and with Pocock;
    ``z_statistics`` is the test statistic every scenario reads."""
    from scipy.stats import norm

    p_treatment = p_control - uplift
    n = sample_size(p_control, p_treatment, alpha, power)
    critical = float(norm.ppf(1 - alpha / 2))
    pocock = pocock_boundary(looks, alpha, seed + 7)
    rng = np.random.default_rng(seed)
    z_ab = z_statistics(rng, p_control, p_treatment, n, looks, sims)
    z_aa = z_statistics(rng, p_control, p_control, n, looks, sims)
    # cross-check the vectorised statistic against statsmodels on one A/A experiment
    one = np.random.default_rng(seed + 1)
    a, b = (int(one.binomial(n, p_control)) for _ in range(2))
    pooled = (a + b) / (2 * n)
    z_one = (a / n - b / n) / np.sqrt(pooled * (1 - pooled) * 2 / n)
    return {
        "p_control": p_control,
        "p_treatment": p_treatment,
        "n_per_arm": n,
        "critical_z": critical,
        "pocock_z": pocock,
        "power_fixed": rate(np.abs(z_ab[:, -1]) > critical),
        "power_pocock": rate(np.abs(z_ab).max(axis=1) > pocock),
        "aa_fixed": rate(np.abs(z_aa[:, -1]) > critical),
        "aa_peeking": rate(np.abs(z_aa).max(axis=1) > critical),
        "aa_pocock": rate(np.abs(z_aa).max(axis=1) > pocock),
        "peeking_by_looks": {
            k: rate(np.abs(z_aa[:, _evenly(looks, k)]).max(axis=1) > critical).value
            for k in sorted({1, 2, max(looks // 2, 1), looks})
        },
        "ztest_crosscheck_abs_diff": abs(check_ztest(float(z_one), a, b, n)),
    }


def _evenly(looks: int, k: int) -> list[int]:
    """Indices of k looks spread over the ``looks`` batches, the last one always included."""
    return sorted({int(round(looks * (i + 1) / k)) - 1 for i in range(k)})
