"""What people look at: the availability table by phase and the timeline plot."""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from labs.availability.claims import between, nines
from labs.availability.faults import HealthSample
from labs.common.plots import from_zero, new_figure, save_figure
from labs.common.steady_load import Hit, failed, worst_gap

PHASES = (
    ("steady", None, "kill"),
    ("crash + restart", "kill", "hang"),
    ("hang + resume", "hang", "term"),
    ("graceful stop", "term", "store_gone"),
    ("store gone", "store_gone", None),
    ("whole run", None, None),
)
MARKS = {
    "kill": "SIGKILL",
    "restart": "restart",
    "recovered": "healthy again",
    "hang": "SIGSTOP",
    "resume": "SIGCONT",
    "term": "SIGTERM",
    "store_gone": "store gone",
}


def availability_table(hits: Sequence[Hit], events: dict[str, float]) -> pd.DataFrame:
    """Per phase: requests, failures, success rate, nines (a lower bound without failures),
    the worst gap between two successes and the p99 latency."""
    rows = []
    for name, start, end in PHASES:
        sel = between(hits, events[start] if start else -math.inf,
                      events[end] if end else math.inf)  # fmt: skip
        lat = [1000 * (h.finished - h.started) for h in sel if h.ok]
        n, bad = len(sel), len(failed(sel))
        rows.append(
            {
                "phase": name,
                "requests": n,
                "failed": bad,
                "success_rate": round(1 - bad / n, 6) if n else None,
                "nines": round(nines(n, bad), 2) if n else None,
                "worst_gap_s": round(worst_gap(sel), 3),
                "p99_ms": round(float(np.percentile(lat, 99)), 1) if lat else None,
            }
        )
    return pd.DataFrame(rows)


def plot_timeline(
    hits: Sequence[Hit],
    events: dict[str, float],
    address: dict[str, str],
    samples: Sequence[HealthSample],
    path: Path,
    bin_s: float = 0.25,
) -> None:
    """Top: requests/s served by each replica and failed requests/s, faults marked. Bottom:
    how many replicas Envoy routed to (its health view)."""
    fig, (top, bottom) = new_figure(2, 1, size=(9, 6.5), sharex=True)
    t0 = min(h.started for h in hits)
    edges = np.arange(0, max(h.started for h in hits) - t0 + bin_s, bin_s)
    for name, addr in address.items():
        counts, _ = np.histogram([h.started - t0 for h in hits if h.host == addr], edges)
        top.plot(edges[:-1], counts / bin_s, label=name)
    errors, _ = np.histogram([h.started - t0 for h in failed(hits)], edges)
    top.plot(edges[:-1], errors / bin_s, color="black", linestyle="--", label="failed requests")
    for key, label in MARKS.items():
        if key in events:
            for ax in (top, bottom):
                ax.axvline(events[key] - t0, color="grey", linestyle=":", linewidth=1)
            top.annotate(label, (events[key] - t0, 1), xycoords=("data", "axes fraction"),
                         rotation=90, va="top", ha="right", fontsize=7)  # fmt: skip
    top.set(ylabel="requests / s", title=f"Replicas behind Envoy: {len(failed(hits))} failed "
            f"of {len(hits)} requests")  # fmt: skip
    from_zero(top)
    top.legend(loc="lower left")
    xs = [s.at - t0 for s in samples if s.at >= t0]
    ys = [len(s.healthy) for s in samples if s.at >= t0]
    bottom.step(xs, ys, where="post", label="healthy replicas (Envoy /clusters)")
    bottom.set(xlabel="seconds since the load started", ylabel="replicas in rotation")
    bottom.set_ylim(0, len(address) + 0.5)
    bottom.legend(loc="lower left")
    save_figure(fig, path)
