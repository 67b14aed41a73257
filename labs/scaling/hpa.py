"""The Kubernetes Horizontal Pod Autoscaler's rule, simulated step by step.

Every sync period (15 s by default) the HPA reads the metric — here CPU utilisation of the
ready replicas, i.e. load / (ready replicas × capacity per replica) — and computes

    desired = ceil(current × metric / target)

It does nothing while ``|metric / target - 1| <= tolerance`` (0.1), scales up at once (at most
doubling, or +4 pods, per period: the default scale-up policy), and scales *down* only to the
highest recommendation of the last ``downscale_window_s`` (300 s): the stabilisation window
that stops a dip from removing pods a returning peak needs. New pods serve only after
``pod_ready_s`` and count as idle until then. The traffic curve comes from the production
stream (see :func:`traffic_curve`).
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class HpaPolicy:
    """The HPA knobs (Kubernetes defaults where Kubernetes has one)."""

    target_utilization: float = 0.6
    tolerance: float = 0.1
    sync_period_s: float = 15.0
    downscale_window_s: float = 300.0
    min_replicas: int = 2
    max_replicas: int = 50
    pod_ready_s: float = 30.0


@dataclass(frozen=True)
class HpaTrace:
    """What happened at every sync: time, load, replicas asked for and replicas ready."""

    t_s: np.ndarray
    load: np.ndarray  # predictions per second
    replicas: np.ndarray  # pods the deployment asks for
    ready: np.ndarray  # pods serving
    capacity_per_replica: float
    policy: HpaPolicy

    @property
    def scaling_events(self) -> int:
        return int(np.count_nonzero(np.diff(self.replicas)))

    @property
    def replica_hours(self) -> float:
        return float(np.sum(self.replicas) * self.policy.sync_period_s / 3600)

    @property
    def overloaded_share(self) -> float:
        """Share of the time the load exceeded what the ready pods can serve at 100 %."""
        return float(np.mean(self.load > self.ready * self.capacity_per_replica))

    def static_replicas(self) -> int:
        """Pods a fixed deployment needs for the peak at the same target utilisation."""
        per_replica = self.capacity_per_replica * self.policy.target_utilization
        need = math.ceil(self.load.max() / per_replica)
        return max(self.policy.min_replicas, need)


def desired_replicas(current: int, metric: float, target: float, tolerance: float) -> int:
    """The HPA formula: ``ceil(current × metric / target)``, unchanged within the tolerance."""
    ratio = metric / target
    if abs(ratio - 1.0) <= tolerance:
        return current
    return math.ceil(current * ratio)


def simulate_hpa(load: np.ndarray, capacity_per_replica: float, policy: HpaPolicy) -> HpaTrace:
    """Run the HPA over ``load`` (predictions/s, one value per sync period)."""
    if capacity_per_replica <= 0:
        raise ValueError(f"capacity_per_replica must be > 0, got {capacity_per_replica}")
    steps = len(load)
    window = max(1, round(policy.downscale_window_s / policy.sync_period_s))
    ready_delay = max(0, math.ceil(policy.pod_ready_s / policy.sync_period_s))
    per_replica = capacity_per_replica * policy.target_utilization
    first = max(policy.min_replicas, math.ceil(load[0] / per_replica))
    current = min(first, policy.max_replicas)
    recommendations: deque[int] = deque([current], maxlen=window)
    asked, ready = np.zeros(steps, dtype=int), np.zeros(steps, dtype=int)
    starts: deque[tuple[int, int]] = deque()  # (step it becomes ready, pods)
    serving = current
    for i, rate in enumerate(load):
        while starts and starts[0][0] <= i:
            serving += starts.popleft()[1]
        # The metric is the ready pods' utilisation, at most 100 % each (an overloaded pod
        # shows a full CPU, not the queue behind it). Pods still starting count as idle, as
        # Kubernetes counts them when scaling up: without that the HPA would multiply again
        # every period while new pods start, and overshoot.
        busy = min(rate / capacity_per_replica, serving)  # pods' worth of work being done
        metric = busy / current  # = the ready pods' utilisation when all pods are ready
        raw = desired_replicas(current, metric, policy.target_utilization, policy.tolerance)
        raw = min(max(raw, policy.min_replicas), policy.max_replicas)
        recommendations.append(raw)
        if raw > current:  # scale up at once, bounded by the default policy
            new = min(raw, max(2 * current, current + 4))
        else:  # scale down only to the highest recommendation in the window
            new = max(recommendations) if window > 1 else raw
            new = min(new, current)
        if new > current:
            starts.append((i + ready_delay, new - current))
        elif new < current:  # cancel pods still starting first, then stop ready ones
            remove = current - new
            while remove and starts:
                step, pods = starts.pop()
                taken = min(pods, remove)
                remove -= taken
                if pods > taken:
                    starts.append((step, pods - taken))
            serving -= remove
        current = new
        asked[i], ready[i] = current, serving
    t = np.arange(steps) * policy.sync_period_s
    return HpaTrace(t, np.asarray(load, float), asked, ready, capacity_per_replica, policy)


def traffic_curve(
    arrivals_s: np.ndarray,
    days: int,
    sync_period_s: float,
    requests_per_row: float,
) -> np.ndarray:
    """Predictions per second per sync period, from each stream row's arrival time (seconds
    since the stream began); each row stands for ``requests_per_row`` production predictions."""
    edges = np.arange(0, days * 86400 + sync_period_s, sync_period_s)
    counts, _ = np.histogram(arrivals_s, bins=edges)
    return counts * requests_per_row / sync_period_s


def diurnal_arrivals(
    days: np.ndarray,
    seed: int,
    peak_hour: float,
    trough_share: float,
    spike: tuple[int, float, float, float] | None = None,
) -> np.ndarray:
    """Arrival times (s) for stream rows of the given ``days``: a daily curve peaking at
    ``peak_hour`` whose trough carries ``trough_share`` of the peak rate, and optionally a
    spike (day, start hour, hours, extra multiple of the rate) such as a campaign."""
    rng = np.random.default_rng(seed)
    grid = np.arange(0, 24, 1 / 60)  # minutes of a day, in hours
    wave = 0.5 * (1 + np.cos(2 * np.pi * (grid - peak_hour) / 24))  # 1 at the peak hour
    shape = trough_share + (1 - trough_share) * wave
    out = np.empty(len(days))
    for day in np.unique(days):
        idx = np.flatnonzero(days == day)
        density = shape.copy()
        if spike is not None and spike[0] == day:
            _, start, hours, extra = spike
            density[(grid >= start) & (grid < start + hours)] *= 1 + extra
        minute = rng.choice(len(grid), size=len(idx), p=density / density.sum())
        out[idx] = day * 86400 + (minute + rng.random(len(idx))) * 60
    return out
