"""Deployment lab benchmark: wall time of `python -m labs.deployment` (goal ≤ 60 s on 2 idle
cores, after `make setup`), with the lab's own phase timestamps, and the blue-green rollback's
time (one admin call, goal ≤ deployment.max_rollback_s; not asserted by the lab's tests).
Prints figures; writes reports/bench/; exits 1 if a goal is missed."""

from __future__ import annotations

import json
import sys

from labwall import ROOT, bench_lab_wall

WALL_GOAL_S = 60.0

if __name__ == "__main__":
    bench_lab_wall("deployment", goal_s=WALL_GOAL_S)
    summary = json.loads((ROOT / "reports" / "deployment" / "summary.json").read_text())
    wall = json.loads((ROOT / "reports" / "bench" / "deployment.json").read_text())
    rollback_ms = next(
        c["measured"]["rollback_ms"]
        for c in summary["claims"]
        if c["id"] == "blue_green_zero_failed"
    )
    bound_ms = summary["params"]["max_rollback_s"] * 1000
    results = [
        ("lab wall time (s)", wall["lab_deployment_wall_s"], WALL_GOAL_S),
        ("blue-green rollback (ms)", rollback_ms, bound_ms),
    ]
    for name, value, bound in results:
        print(f"  {name:26} {value:8.1f}  goal ≤ {bound:g}: {'ok' if value <= bound else 'MISSED'}")
    sys.exit(0 if all(0 < value <= bound for _, value, bound in results) else 1)
