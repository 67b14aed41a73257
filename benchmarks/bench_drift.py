"""Drift lab benchmark: wall time of `python -m labs.drift` (goal ≤ 20 s on 2 cores, after
`make setup`), with the lab's own phase timestamps. Prints figures; writes reports/bench/."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
GOAL_S = 20.0


def main() -> int:
    python = str(ROOT / ".venv" / "bin" / "python")
    with tempfile.TemporaryDirectory(prefix="bench-drift-") as tmp:
        # A throw-away MLflow store: the benchmark leaves no runs in the user's.
        env = {**os.environ, "MLFLOW_TRACKING_URI": f"sqlite:///{Path(tmp) / 'mlflow.db'}"}
        start = time.perf_counter()
        done = subprocess.run(
            [python, "-m", "labs.drift"], cwd=ROOT, env=env, capture_output=True, text=True
        )
        wall = time.perf_counter() - start
    if done.returncode != 0:
        sys.exit(
            f"labs.drift failed ({done.returncode}):\n{done.stdout[-3000:]}{done.stderr[-3000:]}"
        )
    phases = re.findall(r"^\[\s*([\d.]+)s\] (\S.*?)(?: …)?$", done.stdout, flags=re.M)
    print(f"{'phase (seconds since the lab started)':60} {'at':>6}")
    for at, what in phases:
        print(f"  {what[:58]:58} {float(at):6.1f}")
    verdict = "ok" if wall <= GOAL_S else "MISSED"
    print(f"\nmake lab-drift wall time: {wall:.1f} s (goal ≤ {GOAL_S:g} s: {verdict})")
    print(f"cores: {os.cpu_count()}, load average before: {os.getloadavg()[0]:.2f}")
    out = ROOT / "reports" / "bench"
    out.mkdir(parents=True, exist_ok=True)
    figures = {
        "lab_drift_wall_s": wall,
        "goal_s": GOAL_S,
        "phases": {w: float(a) for a, w in phases},
    }
    (out / "drift.json").write_text(json.dumps(figures, indent=2) + "\n")
    print(f"written: {out / 'drift.json'}")
    return 0 if wall <= GOAL_S else 1  # a missed goal fails `make bench`


if __name__ == "__main__":
    sys.exit(main())
