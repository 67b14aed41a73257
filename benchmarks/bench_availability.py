"""Availability lab benchmark: wall time of `python -m labs.availability` (goal ≤ 60 s on 2
idle cores, after `make setup`), with the lab's own phase timestamps. Prints figures; writes
reports/bench/."""

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
TOPIC = "availability"
GOAL_S = 60.0


def main() -> int:
    python = str(ROOT / ".venv" / "bin" / "python")
    load_before = os.getloadavg()[0]
    with tempfile.TemporaryDirectory(prefix=f"bench-{TOPIC}-") as tmp:
        # A throw-away MLflow store: the benchmark leaves no runs in the user's.
        env = {**os.environ, "MLFLOW_TRACKING_URI": f"sqlite:///{Path(tmp) / 'mlflow.db'}"}
        start = time.perf_counter()
        done = subprocess.run(
            [python, "-m", f"labs.{TOPIC}"], cwd=ROOT, env=env, capture_output=True, text=True
        )
        wall = time.perf_counter() - start
    if done.returncode != 0:
        sys.exit(
            f"labs.{TOPIC} failed ({done.returncode}):\n{done.stdout[-3000:]}{done.stderr[-3000:]}"
        )
    phases = re.findall(r"^\[\s*([\d.]+)s\] (\S.*?)(?: …)?$", done.stdout, flags=re.M)
    print(f"{'phase (seconds since the lab started)':60} {'at':>6}")
    for at, what in phases:
        print(f"  {what[:58]:58} {float(at):6.1f}")
    verdict = "ok" if wall <= GOAL_S else "MISSED"
    print(f"\nmake lab-{TOPIC} wall time: {wall:.1f} s (goal ≤ {GOAL_S:g} s: {verdict})")
    print(f"cores: {os.cpu_count()}, load average before: {load_before:.2f}")
    out = ROOT / "reports" / "bench"
    out.mkdir(parents=True, exist_ok=True)
    figures = {
        f"lab_{TOPIC}_wall_s": wall,
        "goal_s": GOAL_S,
        "load_average_before": load_before,
        "phases": {w: float(a) for a, w in phases},
    }
    (out / f"{TOPIC}.json").write_text(json.dumps(figures, indent=2) + "\n")
    print(f"written: {out / f'{TOPIC}.json'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
