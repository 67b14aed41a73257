"""Explainability lab benchmark: wall time of `python -m labs.explainability` (goal ≤ 45 s on 2
idle cores), its phase timestamps, the import cost of shap, and tree SHAP's cost per explained
row on the lab's forest. Prints figures; writes reports/bench/explainability.json."""

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
GOAL_S = 45.0


def lab_wall_time(python: str) -> tuple[float, list[tuple[str, str]]]:
    with tempfile.TemporaryDirectory(prefix="bench-explainability-") as tmp:
        # A throw-away MLflow store: the benchmark leaves no runs in the user's.
        env = {**os.environ, "MLFLOW_TRACKING_URI": f"sqlite:///{Path(tmp) / 'mlflow.db'}"}
        start = time.perf_counter()
        done = subprocess.run(
            [python, "-m", "labs.explainability"],
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
        )
        wall = time.perf_counter() - start
    if done.returncode != 0:
        sys.exit(f"labs.explainability failed ({done.returncode}):\n{done.stdout[-3000:]}")
    return wall, re.findall(r"^\[\s*([\d.]+)s\] (\S.*?)(?: …)?$", done.stdout, flags=re.M)


def shap_import_s(python: str) -> float:
    start = time.perf_counter()
    subprocess.run([python, "-c", "import shap"], check=True, capture_output=True)
    return time.perf_counter() - start


def shap_ms_per_row() -> float:
    from labs.common.data import TARGET
    from labs.common.params import params_for
    from labs.explainability import explain as ex
    from labs.explainability.lab import ExplainabilityParams

    p = params_for(ExplainabilityParams, "explainability")
    train, holdout = ex.make_frames(
        p.train_rows, p.shap_rows, p.seed, p.noise_cardinality, 3.0, 0.2
    )
    columns = ex.columns_for(leaky=False)
    model = ex.build_forest(columns, p.n_estimators, p.max_depth, p.seed)
    model.fit(train[columns], train[TARGET])
    ex.shap_explain(model, holdout.head(5), columns)  # import and warm up
    start = time.perf_counter()
    ex.shap_explain(model, holdout, columns)
    return 1000 * (time.perf_counter() - start) / len(holdout)


def main() -> int:
    python = str(ROOT / ".venv" / "bin" / "python")
    load = os.getloadavg()[0]
    wall, phases = lab_wall_time(python)
    print(f"{'phase (seconds since the lab started)':60} {'at':>6}")
    for at, what in phases:
        print(f"  {what[:58]:58} {float(at):6.1f}")
    verdict = "ok" if wall <= GOAL_S else "MISSED"
    print(f"\nmake lab-explainability wall time: {wall:.1f} s (goal ≤ {GOAL_S:g} s: {verdict})")
    imp = shap_import_s(python)
    per_row = shap_ms_per_row()
    print(f"import shap: {imp:.1f} s; tree SHAP on the lab's forest: {per_row:.1f} ms per row")
    print(f"cores: {os.cpu_count()}, load average before: {load:.2f}")
    out = ROOT / "reports" / "bench"
    out.mkdir(parents=True, exist_ok=True)
    figures = {
        "lab_explainability_wall_s": wall,
        "goal_s": GOAL_S,
        "shap_import_s": imp,
        "shap_ms_per_row": per_row,
        "load_average_before": load,
        "phases": {w: float(a) for a, w in phases},
    }
    (out / "explainability.json").write_text(json.dumps(figures, indent=2) + "\n")
    print(f"written: {out / 'explainability.json'}")
    return 0 if wall <= GOAL_S else 1  # a missed goal fails `make bench`


if __name__ == "__main__":
    sys.exit(main())
