"""The cost model: what a million predictions cost on a serverless price table and on
always-on instances, from the throughput this lab measured — and the seed's cost levers
(right-sizing, autoscaling, reserved and spot capacity) as rows of one table.

Prices are inputs (``params.yaml`` → ``scaling``, with the date they were taken); nothing
here is a price. Formulas:

- serverless, one prediction per invocation: request fee + billed duration × memory × GB-s
  price, the duration being the measured in-process time of one prediction, rounded up to
  the billing granularity;
- always-on: replica-hours × hourly price, replicas from the measured capacity per replica
  at the target utilisation (or from the HPA simulation);
- spot training without checkpoints: an interruption (a Poisson process with rate λ per
  hour) restarts the job, so a job of T hours takes (e^{λT} − 1)/λ hours on average; with a
  checkpoint every c hours each segment restarts alone: T/c × (e^{λc} − 1)/λ.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

SECONDS_PER_MONTH = 730 * 3600  # the 730-hour month cloud price pages use


@dataclass(frozen=True)
class Prices:
    """A price table (USD) and when it was taken."""

    taken: str
    serverless_per_million_requests: float
    serverless_per_gb_second: float
    serverless_memory_gb: float
    serverless_billing_ms: float
    instance_hourly: float
    reserved_hourly: float
    spot_hourly: float
    spot_interruptions_per_hour: float


def serverless_cost_per_prediction(prices: Prices, compute_s: float) -> float:
    """USD for one invocation scoring one prediction that computes for ``compute_s``."""
    unit = prices.serverless_billing_ms / 1000
    billed = max(1, math.ceil(compute_s / unit)) * unit
    duration = billed * prices.serverless_memory_gb * prices.serverless_per_gb_second
    return prices.serverless_per_million_requests / 1e6 + duration


ServerlessCost = Callable[[Prices, float], float]
HoursWithRestarts = Callable[[float, float, "float | None"], float]


def always_on_monthly(prices: Prices, replicas: float) -> float:
    """USD per month of ``replicas`` on-demand pods running all month."""
    return replicas * prices.instance_hourly * SECONDS_PER_MONTH / 3600


def break_even_per_month(prices: Prices, compute_s: float, replicas: int) -> float:
    """Predictions per month where serverless at the price list's per-invocation price costs
    as much as ``replicas`` always-on pods (the number to quote; the lab checks its cost
    model's bills against it)."""
    return always_on_monthly(prices, replicas) / serverless_cost_per_prediction(prices, compute_s)


def expected_hours_with_restarts(hours: float, rate: float, checkpoint_h: float | None) -> float:
    """Mean wall time of a ``hours`` job interrupted at ``rate`` per hour (restart from the
    last checkpoint, or from scratch when ``checkpoint_h`` is None)."""
    if rate <= 0:
        return hours
    if checkpoint_h is None or checkpoint_h >= hours:
        return math.expm1(rate * hours) / rate
    return hours / checkpoint_h * math.expm1(rate * checkpoint_h) / rate


def spot_break_even_hours(
    prices: Prices,
    hours_with_restarts: HoursWithRestarts = expected_hours_with_restarts,
    longest_h: float = 1e4,
) -> float:
    """The job length beyond which spot without checkpoints costs more than on-demand under
    the restart model ``hours_with_restarts``; ``inf`` if it never does up to ``longest_h``."""
    rate = prices.spot_interruptions_per_hour

    def spot_dearer(hours: float) -> bool:
        try:
            spot = hours_with_restarts(hours, rate, None) * prices.spot_hourly
        except OverflowError:  # e^{λT} beyond floats: the re-work dwarfs any discount
            return True
        return spot > hours * prices.instance_hourly

    if not spot_dearer(longest_h):
        return math.inf
    low, high = 1e-6, longest_h  # the re-work share grows with the job: bisect the crossing
    for _ in range(200):
        mid = (low + high) / 2
        low, high = (low, mid) if spot_dearer(mid) else (mid, high)
    return (low + high) / 2


def serving_rows(
    prices: Prices,
    *,
    predictions_per_month: float,
    compute_s: float,
    static_replicas: int,
    overprovision: float,
    hpa_replica_hours_per_month: float,
    min_replicas: int,
    serverless_cost: ServerlessCost = serverless_cost_per_prediction,
) -> list[dict[str, Any]]:
    """Monthly cost and cost per million predictions of each way to serve the same traffic,
    serverless priced per invocation by ``serverless_cost``."""
    hours = SECONDS_PER_MONTH / 3600
    burst_hours = max(hpa_replica_hours_per_month - min_replicas * hours, 0.0)
    rows = [
        ("serverless (pay per invocation)", predictions_per_month
         * serverless_cost(prices, compute_s), "—"),
        ("always-on, not right-sized", math.ceil(static_replicas * overprovision) * hours
         * prices.instance_hourly, f"{math.ceil(static_replicas * overprovision)} pods"),
        ("always-on, right-sized for the peak", static_replicas * hours * prices.instance_hourly,
         f"{static_replicas} pods"),
        ("autoscaled (HPA), on-demand", hpa_replica_hours_per_month * prices.instance_hourly,
         f"{hpa_replica_hours_per_month / hours:.1f} pods on average"),
        ("autoscaled, reserved baseline + on-demand burst", min_replicas * hours
         * prices.reserved_hourly + burst_hours * prices.instance_hourly,
         f"{min_replicas} reserved"),
        ("autoscaled, reserved baseline + spot burst", min_replicas * hours
         * prices.reserved_hourly + burst_hours * prices.spot_hourly,
         f"{min_replicas} reserved"),
    ]  # fmt: skip
    return [
        {
            "option": name,
            "capacity": note,
            "usd_per_month": monthly,
            "usd_per_million": monthly / predictions_per_month * 1e6,
        }
        for name, monthly, note in rows
    ]


def training_rows(
    prices: Prices,
    job_hours: float,
    checkpoint_h: float,
    hours_with_restarts: HoursWithRestarts = expected_hours_with_restarts,
) -> list[dict[str, Any]]:
    """One training job on on-demand and on spot capacity, with the re-work interruptions cause
    (wall hours from the restart model ``hours_with_restarts``)."""
    rate = prices.spot_interruptions_per_hour
    cases = [
        ("on-demand", job_hours, prices.instance_hourly),
        ("spot, no checkpoints", hours_with_restarts(job_hours, rate, None), prices.spot_hourly),
        (f"spot, checkpoint every {checkpoint_h:g} h",
         hours_with_restarts(job_hours, rate, checkpoint_h), prices.spot_hourly),
    ]  # fmt: skip
    return [
        {
            "option": name,
            "wall_hours": wall,
            "rework_hours": wall - job_hours,
            "usd": wall * hourly,
        }
        for name, wall, hourly in cases
    ]
