"""The three ways to put a new model in front of users, each driven through Envoy's admin API:
a canary controller, a blue-green switch and a shadow (mirrored) run.

The proxy does the routing; this code only turns the knob (``/runtime_modify``), sends
traffic, and reads what happened — Envoy's per-cluster counters and each replica's
Prometheus metrics and prediction log.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from labs.common.data import LABEL
from labs.common.proxy import Proxy, ProxySpec
from labs.common.replay import Request, replay
from labs.common.steady_load import Hit, SteadyLoad, failed
from labs.deployment.analysis import (
    AnalysisRules,
    Verdict,
    Window,
    analyse,
    scrape,
    split_interval,
    window,
)

WeightSetter = Callable[[Proxy, int], None]
Analysis = Callable[[Window | None, Window | None, AnalysisRules], Verdict]


def set_weight(proxy: Proxy, percent: int) -> None:
    """The controller's one knob: the canary's share, live, through Envoy's admin runtime."""
    proxy.set_canary_percent(percent)


@dataclass(frozen=True)
class Step:
    """One canary step: the configured weight, what Envoy routed, and the analysis."""

    weight: int
    sent: int  # requests sent during the step (Envoy: both clusters)
    to_canary: int
    failed: int  # client-side non-200s
    ci_low: float
    ci_high: float
    verdict: Verdict

    @property
    def observed(self) -> float:
        return self.to_canary / self.sent if self.sent else float("nan")

    @property
    def weight_in_ci(self) -> bool:
        return self.ci_low <= self.weight / 100 <= self.ci_high


@dataclass
class Rollout:
    """A canary run: its steps, and whether it was promoted or rolled back."""

    canary: str
    steps: list[Step] = field(default_factory=list)
    promoted: bool = False
    rolled_back_at: int | None = None  # the weight of the failing step
    canary_total: int = 0  # every request Envoy sent to the canary cluster, whole rollout
    total: int = 0
    canary_after_rollback: int = 0  # requests to the canary after the rollback (must be 0)

    @property
    def exposure(self) -> float:
        return self.canary_total / self.total if self.total else float("nan")


def _cluster_total(proxy: Proxy, cluster: str) -> int:
    return proxy.cluster_stats(cluster).get("upstream_rq_total", 0)


def run_canary(
    proxy: Proxy,
    *,
    champion: str,
    canary: str,
    metrics_urls: dict[str, str],
    weights: Sequence[int],
    traffic: Callable[[int], list[Request]],
    rules: AnalysisRules,
    alpha: float,
    clients: int,
    echo: Callable[[str], None] = lambda _: None,
    set_weight: WeightSetter = set_weight,
    analysis: Analysis = analyse,
) -> Rollout:
    """Step the canary's weight through ``weights`` (``set_weight``); after each step judge the
    replicas' metrics (``analysis``); on the first failing step set the weight back to 0."""
    result = Rollout(canary)
    base = {name: scrape(url) for name, url in metrics_urls.items()}
    start_total = _cluster_total(proxy, champion) + _cluster_total(proxy, canary)
    start_canary = _cluster_total(proxy, canary)
    for index, weight in enumerate(weights):
        set_weight(proxy, weight)
        before_canary = scrape(metrics_urls[canary])
        c0, p0 = _cluster_total(proxy, canary), _cluster_total(proxy, champion)
        records = replay(proxy.url, traffic(index), clients=clients, keep_responses=False).records
        c1, p1 = _cluster_total(proxy, canary), _cluster_total(proxy, champion)
        # The champion's baseline is cumulative from the rollout's start: at 100 % it gets
        # nothing in the step itself, and more rows make the comparison steadier anyway.
        verdict = analysis(
            window(before_canary, scrape(metrics_urls[canary])),
            window(base[champion], scrape(metrics_urls[champion])),
            rules,
        )
        sent, to_canary = (c1 - c0) + (p1 - p0), c1 - c0
        low, high = split_interval(to_canary, sent, alpha)
        step = Step(
            weight, sent, to_canary, sum(r.status != 200 for r in records), low, high, verdict
        )
        result.steps.append(step)
        echo(
            f"  {canary} at {weight:3d} %: {to_canary}/{sent} requests ({step.observed:.3f}, "
            f"CI [{low:.3f}, {high:.3f}]) → {'pass' if verdict.passed else 'FAIL'} "
            f"({verdict.reason})"
        )
        if not verdict.passed:
            set_weight(proxy, 0)
            result.rolled_back_at = weight
            break
    else:
        result.promoted = True
    result.canary_total = _cluster_total(proxy, canary) - start_canary
    result.total = _cluster_total(proxy, champion) + _cluster_total(proxy, canary) - start_total
    return result


def traffic_after_rollback(
    proxy: Proxy, rollout: Rollout, champion: str, requests: list[Request], clients: int
) -> None:
    """Send more traffic after a rollback; count what still reaches the canary (must be 0)."""
    c0, p0 = _cluster_total(proxy, rollout.canary), _cluster_total(proxy, champion)
    replay(proxy.url, requests, clients=clients, keep_responses=False)
    c1, p1 = _cluster_total(proxy, rollout.canary), _cluster_total(proxy, champion)
    rollout.canary_after_rollback = c1 - c0
    rollout.canary_total += c1 - c0
    rollout.total += (c1 - c0) + (p1 - p0)


@dataclass(frozen=True)
class BlueGreen:
    """A switch blue → green and the rollback, under continuous load."""

    hits: list[Hit]
    switch_at: float  # wall clock of the admin call
    switch_s: float  # the admin call's duration: the switch itself
    rollback_at: float
    rollback_s: float
    failed: int
    blue_after_switch: int  # requests started after the switch returned, served by blue
    green_after_rollback: int  # … after the rollback returned, served by green
    last_green_s: float  # last green-served request's start, seconds after the rollback call
    by_phase: dict[str, dict[str, int]]


def run_blue_green(
    proxy: Proxy,
    bodies: list[dict[str, Any]],
    *,
    hold_s: float,
    clients: int,
    set_weight: WeightSetter = set_weight,
) -> BlueGreen:
    """Blue serves; switch 100 % to green in one admin call; roll back in one call; keep
    ``clients`` sending requests the whole time."""
    with SteadyLoad(proxy.url, bodies, clients=clients, id_prefix="bg") as load:
        time.sleep(hold_s)
        switch_at = time.time()
        set_weight(proxy, 100)
        switched = time.time()
        time.sleep(hold_s)
        rollback_at = time.time()
        set_weight(proxy, 0)
        rolled_back = time.time()
        time.sleep(hold_s)
    hits = load.stop()

    def phase(h: Hit) -> str:
        return (
            "before" if h.started < switch_at else "green" if h.started < rollback_at else "after"
        )

    by_phase: dict[str, Counter[str]] = {p: Counter() for p in ("before", "green", "after")}
    for h in hits:
        by_phase[phase(h)][h.cluster or "none"] += 1
    return BlueGreen(
        hits=hits,
        switch_at=switch_at,
        switch_s=switched - switch_at,
        rollback_at=rollback_at,
        rollback_s=rolled_back - rollback_at,
        failed=len(failed(hits)),
        blue_after_switch=sum(
            h.cluster == "blue" for h in hits if switched < h.started < rollback_at
        ),
        green_after_rollback=sum(h.cluster == "green" for h in hits if h.started > rolled_back),
        last_green_s=max(
            (h.started - rollback_at for h in hits if h.cluster == "green"), default=0.0
        ),
        by_phase={p: dict(c) for p, c in by_phase.items()},
    )


def shadow_spec(ports: dict[str, int], champion: str, shadows: Sequence[str]) -> ProxySpec:
    """Envoy for a shadow run: every request to the champion, a mirrored copy (fire and
    forget: its answer is dropped) to each shadow."""
    return ProxySpec({n: [ports[n]] for n in ports}, primary=champion, mirrors=tuple(shadows))


@dataclass(frozen=True)
class ShadowRun:
    """Mirrored traffic: what clients got, and each shadow compared with the champion offline."""

    requests: int
    failed: int
    served_versions: dict[str, int]  # model_version of every client response
    mirrored: dict[str, int]  # Envoy: requests sent to each shadow cluster
    agreement: dict[str, float]  # share of rows with the champion's label
    rows_compared: dict[str, int]
    p99_ms: dict[str, float]  # each replica's /predict p99 over the run (Prometheus)


def run_shadow(
    proxy: Proxy,
    requests: list[Request],
    *,
    champion: str,
    shadows: Sequence[str],
    metrics_urls: dict[str, str],
    logs: dict[str, Path],
    clients: int,
    prefix: str,
) -> ShadowRun:
    """Replay ``requests`` through a proxy that mirrors them to ``shadows``; join each shadow's
    prediction log with the champion's by request id and row."""
    from labs.common.serving.predlog import read_predictions

    names = [champion, *shadows]
    before = {n: scrape(metrics_urls[n]) for n in names}
    result = replay(proxy.url, requests, clients=clients)
    served = Counter(
        str(r.response.get("model_version")) if isinstance(r.response, dict) else "none"
        for r in result.records
    )
    primary = _cluster_total(proxy, champion)
    # Mirrors are fire-and-forget: wait (briefly) until every copy has been answered.
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and any(_cluster_total(proxy, s) < primary for s in shadows):
        time.sleep(0.05)
    after = {n: scrape(metrics_urls[n]) for n in names}
    p99 = {}
    for n in names:
        w = window(before[n], after[n])
        p99[n] = w.p99_ms if w is not None else float("nan")
    frames = {n: read_predictions(logs[n]) for n in names}
    frames = {n: f[f["request_id"].str.startswith(prefix)] for n, f in frames.items()}
    key = ["request_id", "row_index"]
    agreement, compared = {}, {}
    for s in shadows:
        joined = frames[champion][[*key, LABEL]].merge(
            frames[s][[*key, LABEL]], on=key, suffixes=("_champion", "_shadow")
        )
        compared[s] = len(joined)
        agreement[s] = (
            float((joined[f"{LABEL}_champion"] == joined[f"{LABEL}_shadow"]).mean())
            if len(joined)
            else float("nan")
        )
    return ShadowRun(
        requests=len(result.records),
        failed=sum(r.status != 200 for r in result.records),
        served_versions=dict(served),
        mirrored={s: _cluster_total(proxy, s) for s in shadows},
        agreement=agreement,
        rows_compared=compared,
        p99_ms=p99,
    )
