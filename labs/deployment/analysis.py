"""Canary analysis as Flagger / Argo Rollouts do it: at each step, read the replicas'
Prometheus metrics over the step's window and decide — continue, or roll back.

Three pitfalls their users report are guarded here, not left to luck:
- a schedule whose max weight is not a multiple of the step must still end at the max
  (:func:`weight_schedule`), where a naive ``range`` stops short of it;
- a step in which the canary got no traffic has no evidence: it fails, it does not pass;
- a metric that could not be read is *missing*, never 0 (an unreachable ``/metrics`` would
  otherwise read as "0 errors").
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from labs.common.serving.metrics import Samples, histogram_quantile, parse_metrics, series

LATENCY = "churn_request_latency_seconds"
PREDICT = "/predict"


def weight_schedule(step_weight: int, max_weight: int) -> list[int]:
    """Flagger's ``stepWeight``/``maxWeight`` as a list of percents that always ends at the max:
    20/50 → [20, 40, 50]. The last step to 100 is the promotion."""
    if not 0 < step_weight <= max_weight <= 100:
        raise ValueError(
            f"need 0 < step_weight <= max_weight <= 100, got {step_weight}/{max_weight}"
        )
    weights = list(range(step_weight, max_weight, step_weight))
    return [*weights, max_weight]


def naive_schedule(step_weight: int, max_weight: int) -> list[int]:
    """The loop users write (``while w + step <= max``): stops short of a max that is not a
    multiple of the step — the pitfall :func:`weight_schedule` avoids."""
    return list(range(step_weight, max_weight + 1, step_weight))


def scrape(url: str, timeout: float = 5.0) -> Samples | None:
    """A replica's ``/metrics`` parsed, or None when it cannot be read (missing ≠ 0)."""
    import httpx

    try:
        answer = httpx.get(f"{url}/metrics", timeout=timeout)
        answer.raise_for_status()
    except httpx.HTTPError:
        return None
    return parse_metrics(answer.text)


@dataclass(frozen=True)
class Window:
    """What one replica did between two scrapes (counter deltas)."""

    requests: int  # POST /predict answered, any status
    errors_5xx: int
    rows: int  # customers scored
    churn_rows: int
    p99_ms: float  # NaN without requests

    @property
    def error_rate(self) -> float:
        return self.errors_5xx / self.requests if self.requests else math.nan

    @property
    def churn_share(self) -> float:
        return self.churn_rows / self.rows if self.rows else math.nan


def _delta_samples(before: Samples, after: Samples, name: str) -> Samples:
    old = {tuple(sorted(lab.items())): v for lab, v in before.get(name, [])}
    return {
        name: [
            (lab, v - old.get(tuple(sorted(lab.items())), 0.0)) for lab, v in after.get(name, [])
        ]
    }


def window(before: Samples | None, after: Samples | None) -> Window | None:
    """The counters' deltas between two scrapes; None if either scrape is missing."""
    if before is None or after is None:
        return None

    def delta(name: str, **labels: str) -> int:
        return round(series(after, name, **labels) - series(before, name, **labels))

    requests = delta("churn_requests_total", endpoint=PREDICT)
    errors = sum(
        delta("churn_requests_total", endpoint=PREDICT, status=str(code))
        for code in range(500, 600)
    )
    churn = delta("churn_predictions_total", **{"class": "churn"})
    no_churn = delta("churn_predictions_total", **{"class": "no_churn"})
    buckets = _delta_samples(before, after, f"{LATENCY}_bucket")
    p99 = histogram_quantile(buckets, LATENCY, 0.99, PREDICT) if requests else math.nan
    return Window(requests, errors, churn + no_churn, churn, p99 * 1000)


@dataclass(frozen=True)
class AnalysisRules:
    """Success conditions of one step (Flagger ``metrics``; Argo ``successCondition``)."""

    min_requests: int = 5
    max_error_rate: float = 0.01
    max_p99_ms: float = 1000.0
    max_churn_share_diff: float = 0.12

    def __post_init__(self) -> None:
        if self.min_requests < 1:
            raise ValueError("min_requests must be >= 1: zero traffic is never evidence")


@dataclass(frozen=True)
class Verdict:
    """One step's analysis: passed, and why (each check: True, False, or None = not measured)."""

    passed: bool
    reason: str
    checks: dict[str, bool | None] = field(default_factory=dict)
    canary_requests: int | None = None
    error_rate: float | None = None
    p99_ms: float | None = None
    churn_share: float | None = None
    champion_churn_share: float | None = None


def analyse(canary: Window | None, champion: Window | None, rules: AnalysisRules) -> Verdict:
    """Decide a step from the canary's window and the champion's baseline window."""
    if canary is None or champion is None:
        which = "canary" if canary is None else "champion"
        return Verdict(False, f"{which} metrics missing: not read as 0, the step fails")
    if canary.requests < rules.min_requests:
        return Verdict(
            False,
            f"canary served {canary.requests} requests (< {rules.min_requests}): no data is "
            "not success",
            canary_requests=canary.requests,
        )
    diff = abs(canary.churn_share - champion.churn_share) if champion.rows else math.nan
    checks: dict[str, bool | None] = {
        "error_rate": canary.error_rate <= rules.max_error_rate,
        "p99": canary.p99_ms <= rules.max_p99_ms,
        "predictions": None if math.isnan(diff) else diff <= rules.max_churn_share_diff,
    }
    failed = [name for name, ok in checks.items() if ok is not True]
    reason = "all checks passed" if not failed else f"failed: {', '.join(failed)}"
    return Verdict(
        not failed,
        reason,
        checks,
        canary_requests=canary.requests,
        error_rate=canary.error_rate,
        p99_ms=canary.p99_ms,
        churn_share=canary.churn_share,
        champion_churn_share=champion.churn_share,
    )


def split_interval(served: int, total: int, alpha: float) -> tuple[float, float]:
    """Wilson interval (1 − ``alpha``) of the share ``served / total``."""
    from statsmodels.stats.proportion import proportion_confint

    if total == 0:
        return (0.0, 1.0)
    low, high = proportion_confint(served, total, alpha=alpha, method="wilson")
    # Analytically the interval reaches 0 (none served) or 1 (all served); the float formula
    # lands a hair inside, which would put a 100 % weight "outside" its own interval.
    return (0.0 if served == 0 else float(low)), (1.0 if served == total else float(high))
