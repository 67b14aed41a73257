"""Availability lab benchmark: wall time of `python -m labs.availability` (goal ≤ 60 s on 2
idle cores, after `make setup`), with the lab's own phase timestamps, and the lab's timing goals
(not asserted by its tests): Envoy ejects a killed or hung replica within two health-check
rounds (+1 s), and a request that meets the hung replica takes one per-try timeout, not two.
Prints figures; writes reports/bench/; exits 1 if a goal is missed."""

from __future__ import annotations

import json
import sys

from labwall import ROOT, bench_lab_wall

WALL_GOAL_S = 60.0


def goals() -> list[tuple[str, float, float, bool]]:
    """(goal, measured, bound, met) from the run's summary and the wall-time figures."""
    summary = json.loads((ROOT / "reports" / "availability" / "summary.json").read_text())
    wall = json.loads((ROOT / "reports" / "bench" / "availability.json").read_text())
    p = summary["params"]
    m = {c["id"]: c["measured"] for c in summary["claims"]}
    ejection = 2 * (p["hc_interval_s"] + p["hc_timeout_s"]) + 1
    per_try, slowest = p["per_try_timeout_s"], m["hung_replica_ejected"]["slowest_request_s"]
    return [
        ("lab wall time (s)", wall["lab_availability_wall_s"], WALL_GOAL_S,
         wall["lab_availability_wall_s"] <= WALL_GOAL_S),
        ("SIGKILL → ejected (s)", m["kill_zero_failed"]["ejection_s"], ejection,
         0 < m["kill_zero_failed"]["ejection_s"] <= ejection),
        ("SIGSTOP → ejected (s)", m["hung_replica_ejected"]["ejection_s"], ejection,
         0 < m["hung_replica_ejected"]["ejection_s"] <= ejection),
        # at least one per-try timeout (a request met the hung replica), less than two (+1 s)
        ("slowest request while hung (s)", slowest, 2 * per_try + 1,
         per_try <= slowest < 2 * per_try + 1),
    ]  # fmt: skip


if __name__ == "__main__":
    bench_lab_wall("availability", goal_s=WALL_GOAL_S)
    results = goals()
    for name, value, bound, met in results:
        print(f"  {name:34} {value:8.2f}  goal ≤ {bound:g}: {'ok' if met else 'MISSED'}")
    sys.exit(0 if all(met for *_, met in results) else 1)
