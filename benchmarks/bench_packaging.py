"""Packaging lab benchmark: runs `python -m labs.packaging` (goal ≤ 60 s on 2 idle cores) and
prints its packaging table — file size, cold load in a fresh process, one-row and batch
latency, parity — plus the serverless cold/warm figures. Writes reports/bench/packaging.json.

Cold numbers are import-dominated and move with the machine's load: compare them with each
other (ONNX vs scikit-learn vs MLflow), not with another machine's.

Goals (the timings the lab's tests do not assert): the wall time; ONNX loads and scores one
row faster than every scikit-learn package; each Lambda handler's cold start is over 10× a
warm call; a REST batch costs less per row than a one-row request. Exit 1 on a missed goal."""

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
GOAL_S = 60.0


def main() -> int:
    python = str(ROOT / ".venv" / "bin" / "python")
    load_before = os.getloadavg()[0]
    with tempfile.TemporaryDirectory(prefix="bench-packaging-") as tmp:
        # A throw-away MLflow store: the benchmark leaves no runs in the user's.
        env = {**os.environ, "MLFLOW_TRACKING_URI": f"sqlite:///{Path(tmp) / 'mlflow.db'}"}
        start = time.perf_counter()
        done = subprocess.run(
            [python, "-m", "labs.packaging"],
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
            timeout=900,
        )
        wall = time.perf_counter() - start
    if done.returncode != 0:
        sys.exit(
            f"labs.packaging failed ({done.returncode}):\n"
            f"{done.stdout[-3000:]}{done.stderr[-3000:]}"
        )
    report = ROOT / "reports" / "packaging"
    print((report / "packages.md").read_text())
    measured = json.loads((report / "measurements.json").read_text())
    handlers = measured["handlers"]
    for kind, h in handlers.items():
        print(
            f"Lambda handler ({kind}): cold {h['cold_s']:.2f} s, "
            f"warm one-row {h['warm_ms']:.2f} ms "
            f"({1000 * h['cold_s'] / h['warm_ms']:.0f}× warm)"
        )
    phases = re.findall(r"^\[\s*([\d.]+)s\] (\S.*?)(?: …)?$", done.stdout, flags=re.M)
    print(f"\n{'phase (seconds since the lab started)':60} {'at':>6}")
    for at, what in phases:
        print(f"  {what[:58]:58} {float(at):6.1f}")
    probes, rest = measured["probes"], measured["rest"]
    sklearn = [p for name, p in probes.items() if name != "onnx"]
    goals = {
        f"wall_time_at_most_{GOAL_S:g}_s": wall <= GOAL_S,
        "onnx_loads_fastest": probes["onnx"]["load_s"] < min(p["load_s"] for p in sklearn),
        "onnx_scores_one_row_fastest": probes["onnx"]["one_row_ms"]
        < min(p["one_row_ms"] for p in sklearn),
        "handler_cold_over_10x_warm": all(
            1000 * h["cold_s"] > 10 * h["warm_ms"] for h in handlers.values()
        ),
        "rest_batch_cheaper_per_row": rest["batch_ms"] / rest["parity"]["rows"]
        < rest["one_row_ms"],
    }
    missed = [name for name, met in goals.items() if not met]
    verdict = "ok" if wall <= GOAL_S else "MISSED"
    print(f"\nmake lab-packaging wall time: {wall:.1f} s (goal ≤ {GOAL_S:g} s: {verdict})")
    print(f"cores: {os.cpu_count()}, load average before: {load_before:.2f}")
    out = ROOT / "reports" / "bench"
    out.mkdir(parents=True, exist_ok=True)
    figures = {
        "lab_packaging_wall_s": wall,
        "goal_s": GOAL_S,
        "load_average_before": load_before,
        "formats": {
            name: {k: p[k] for k in ("size_bytes", "load_s", "one_row_ms", "batch_ms")}
            | {"max_abs_dp": p["parity"]["max_abs_dp"], "label_flips": p["parity"]["label_flips"]}
            for name, p in measured["probes"].items()
        },
        "rest": {k: measured["rest"][k] for k in ("ready_s", "one_row_ms", "batch_ms")},
        "handlers": {
            k: {m: h[m] for m in ("cold_s", "warm_ms", "batch_ms")} for k, h in handlers.items()
        },
        "phases": {w: float(a) for a, w in phases},
        "goals": goals,
    }
    (out / "packaging.json").write_text(json.dumps(figures, indent=2) + "\n")
    print(f"written: {out / 'packaging.json'}")
    print("goals: " + ("all met" if not missed else "MISSED " + ", ".join(missed)))
    return 1 if missed else 0


if __name__ == "__main__":
    sys.exit(main())
