"""A lab's wall time as a new user meets it: ``python -m labs.<topic>`` after ``make setup``,
in a throw-away MLflow store, with the lab's own phase timestamps. Prints figures and writes
``reports/bench/<topic>.json``; shared by the ``bench_<topic>.py`` scripts that time a lab."""

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


def bench_lab_wall(topic: str, goal_s: float = 60.0) -> int:
    """Run the lab once, print its phases and wall time against ``goal_s``; 0 if the goal is
    met, 1 if it is missed, or exit with the lab's output if it failed."""
    python = str(ROOT / ".venv" / "bin" / "python")
    load_before = os.getloadavg()[0]
    with tempfile.TemporaryDirectory(prefix=f"bench-{topic}-") as tmp:
        # A throw-away MLflow store: the benchmark leaves no runs in the user's.
        env = {**os.environ, "MLFLOW_TRACKING_URI": f"sqlite:///{Path(tmp) / 'mlflow.db'}"}
        start = time.perf_counter()
        done = subprocess.run(
            [python, "-m", f"labs.{topic}"], cwd=ROOT, env=env, capture_output=True, text=True
        )
        wall = time.perf_counter() - start
    if done.returncode != 0:
        sys.exit(
            f"labs.{topic} failed ({done.returncode}):\n{done.stdout[-3000:]}{done.stderr[-3000:]}"
        )
    phases = re.findall(r"^\[\s*([\d.]+)s\] (\S.*?)(?: …)?$", done.stdout, flags=re.M)
    print(f"{'phase (seconds since the lab started)':60} {'at':>6}")
    for at, what in phases:
        print(f"  {what[:58]:58} {float(at):6.1f}")
    verdict = "ok" if wall <= goal_s else "MISSED"
    print(f"\nmake lab-{topic} wall time: {wall:.1f} s (goal ≤ {goal_s:g} s: {verdict})")
    print(f"cores: {os.cpu_count()}, load average before: {load_before:.2f}")
    out = ROOT / "reports" / "bench"
    out.mkdir(parents=True, exist_ok=True)
    figures = {
        f"lab_{topic}_wall_s": wall,
        "goal_s": goal_s,
        "load_average_before": load_before,
        "phases": {w: float(a) for a, w in phases},
    }
    (out / f"{topic}.json").write_text(json.dumps(figures, indent=2) + "\n")
    print(f"written: {out / f'{topic}.json'}")
    return 0 if wall <= goal_s else 1
