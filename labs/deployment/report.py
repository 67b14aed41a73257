"""What people look at: the canary steps as a table and one figure (split per step with its
interval; blue-green share of green over time)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from labs.common.plots import new_figure, save_figure, unit_interval
from labs.deployment.rollout import BlueGreen, Rollout


def steps_table(rollouts: dict[str, Rollout]) -> pd.DataFrame:
    """One row per canary step of every rollout."""
    rows = []
    for name, r in rollouts.items():
        for s in r.steps:
            v = s.verdict
            rows.append(
                {
                    "challenger": name,
                    "weight_pct": s.weight,
                    "sent": s.sent,
                    "to_canary": s.to_canary,
                    "observed": round(s.observed, 4),
                    "ci_low": round(s.ci_low, 4),
                    "ci_high": round(s.ci_high, 4),
                    "churn_canary": None if v.churn_share is None else round(v.churn_share, 3),
                    "churn_champion": None
                    if v.champion_churn_share is None
                    else round(v.champion_churn_share, 3),
                    "verdict": "pass" if v.passed else "rollback",
                }
            )
    return pd.DataFrame(rows)


def plot_deployment(rollouts: dict[str, Rollout], bg: BlueGreen, path: Path) -> None:
    """Left: configured vs observed canary share per step. Right: blue-green, the share of
    requests served by green per 100 ms, switch and rollback marked."""
    fig, (left, right) = new_figure(1, 2)
    for name, r in rollouts.items():
        w = np.array([s.weight / 100 for s in r.steps])
        obs = np.array([s.observed for s in r.steps])
        low = np.array([s.ci_low for s in r.steps])
        high = np.array([s.ci_high for s in r.steps])
        err = np.clip(np.vstack([obs - low, high - obs]), 0, None)
        (line,) = left.plot(w, obs, marker="o", label=f"{name} challenger")
        left.errorbar(w, obs, yerr=err, fmt="none", capsize=3, color=line.get_color())
    left.plot([0, 1], [0, 1], linestyle="--", color="grey", label="configured = observed")
    left.set(xlabel="configured weight", title="Canary: share Envoy sent to the challenger")
    left.set_xlim(0, 1.02)
    unit_interval(left, label="observed share (Wilson CI)")
    left.legend()

    t0 = bg.hits[0].started if bg.hits else 0.0
    bins = np.arange(0, (bg.hits[-1].started - t0) + 0.1, 0.1) if bg.hits else np.array([0.0])
    starts = np.array([h.started - t0 for h in bg.hits])
    green = np.array([h.cluster == "green" for h in bg.hits])
    idx = np.digitize(starts, bins) - 1
    share = [green[idx == i].mean() if np.any(idx == i) else np.nan for i in range(len(bins))]
    right.step(bins, share, where="post", label="share served by green")
    right.axvline(bg.switch_at - t0, color="#55a868", linestyle=":", label="switch to green")
    right.axvline(bg.rollback_at - t0, color="#c44e52", linestyle=":", label="rollback to blue")
    right.set(xlabel="seconds", title=f"Blue-green under load: {bg.failed} failed requests")
    unit_interval(right, label="share of requests (per 100 ms)")
    right.legend()
    save_figure(fig, path)
