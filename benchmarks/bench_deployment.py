"""Deployment lab benchmark: wall time of `python -m labs.deployment` (goal ≤ 60 s on 2 idle cores,
after `make setup`), with the lab's own phase timestamps. Prints figures; writes reports/bench/."""

from __future__ import annotations

import sys

from labwall import bench_lab_wall

if __name__ == "__main__":
    sys.exit(bench_lab_wall("deployment", goal_s=60.0))
