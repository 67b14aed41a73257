"""cicd lab benchmark: wall time of `python -m labs.cicd` (goal ≤ 45 s on 2 cores, after
`make setup`), and what the gate would cost with `mlflow.models.evaluate` instead of our own
metrics + `mlflow.validate_evaluation_results`. Prints figures; writes reports/bench/."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
GOAL_S = 45.0

# One logged model scored by mlflow.models.evaluate vs by quality_metrics + validation.
EVALUATE = """
import json, sys, time
import mlflow
from mlflow.models import MetricThreshold
from labs.cicd.gate import GateThresholds, run_gate
from labs.common.data import FEATURES, TARGET, make_churn_data
from labs.common.model import TrainParams, quality_metrics, train_model
from labs.common.tracking import get_or_create_experiment, log_sklearn_model

train, holdout = make_churn_data(3000, seed=1), make_churn_data(2000, seed=2)
model = train_model(train, TrainParams())
with mlflow.start_run(experiment_id=get_or_create_experiment("bench-cicd")):
    info = log_sklearn_model(model)
    start = time.perf_counter()
    result = mlflow.models.evaluate(
        model=info.model_uri, data=holdout[list(FEATURES) + [TARGET]], targets=TARGET,
        model_type="classifier", evaluator_config={"log_model_explainability": False},
    )
    evaluate_s = time.perf_counter() - start
start = time.perf_counter()
metrics = quality_metrics(holdout[TARGET], model.predict_proba(holdout[list(FEATURES)])[:, 1])
gate = run_gate(
    "bench", {**metrics, "offline_holdout_gap": 0.0}, None, GateThresholds(0.7, 0.7, 0.05, 0.01)
)
ours_s = time.perf_counter() - start
json.dump({"evaluate_s": evaluate_s, "evaluate_artifacts": len(result.artifacts),
           "evaluate_roc_auc": result.metrics["roc_auc"], "ours_s": ours_s,
           "ours_roc_auc": metrics["roc_auc"], "gate_passed": gate.passed}, sys.stdout)
"""


def main() -> int:
    python = str(ROOT / ".venv" / "bin" / "python")
    with tempfile.TemporaryDirectory(prefix="bench-cicd-") as tmp:
        # A throw-away MLflow store: the benchmark leaves no runs in the user's.
        env = {**os.environ, "MLFLOW_TRACKING_URI": f"sqlite:///{Path(tmp) / 'mlflow.db'}"}
        load = os.getloadavg()[0]
        start = time.perf_counter()
        lab = subprocess.run(
            [python, "-m", "labs.cicd"], cwd=ROOT, env=env, capture_output=True, text=True
        )
        wall = time.perf_counter() - start
        if lab.returncode != 0:
            sys.exit(
                f"labs.cicd failed ({lab.returncode}):\n{lab.stdout[-3000:]}{lab.stderr[-3000:]}"
            )
        evaluate = subprocess.run(
            [python, "-c", EVALUATE], cwd=ROOT, env=env, capture_output=True, text=True
        )
        if evaluate.returncode != 0:
            sys.exit(f"evaluate benchmark failed:\n{evaluate.stderr[-3000:]}")
        figures = json.loads(evaluate.stdout.strip().splitlines()[-1])
    verdict = "ok" if wall <= GOAL_S else "MISSED"
    print(f"make lab-cicd wall time: {wall:.1f} s (goal ≤ {GOAL_S:g} s: {verdict})")
    print(
        f"mlflow.models.evaluate, one logged model: {figures['evaluate_s']:.2f} s, "
        f"{figures['evaluate_artifacts']} artifacts, ROC-AUC {figures['evaluate_roc_auc']:.4f}"
    )
    print(
        f"our metrics + validate_evaluation_results: {figures['ours_s']:.3f} s, "
        f"ROC-AUC {figures['ours_roc_auc']:.4f}"
    )
    print(f"cores: {os.cpu_count()}, load average before: {load:.2f}")
    out = ROOT / "reports" / "bench"
    out.mkdir(parents=True, exist_ok=True)
    (out / "cicd.json").write_text(
        json.dumps({"lab_cicd_wall_s": wall, "goal_s": GOAL_S, **figures}, indent=2) + "\n"
    )
    print(f"written: {out / 'cicd.json'}")
    return 0 if wall <= GOAL_S else 1  # a missed goal fails `make bench`


if __name__ == "__main__":
    sys.exit(main())
