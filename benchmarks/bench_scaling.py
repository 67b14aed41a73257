"""Scaling benchmark: the batching curve — rows per second of the churn model scored row by
row and in batches, in-process (``predict_proba``) and over HTTP (the project's serving app,
``POST /predict``, one client, keep-alive), each point measured for ``SECONDS``.

Prints the curve and the gain of the largest batch over row by row; writes
reports/bench/scaling.json. Uses a throw-away MLflow store; leaves nothing behind. Timings
depend on the machine and its load: compare points of one run, not runs of different days.
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SECONDS = 1.0
INPROCESS = (1, 4, 16, 64, 256, 1024)
HTTP = (1, 10, 100, 1000)


def main() -> int:
    with tempfile.TemporaryDirectory(prefix="bench-scaling-") as tmp:
        os.environ["MLFLOW_TRACKING_URI"] = f"sqlite:///{Path(tmp) / 'mlflow.db'}"
        from labs.common.data import make_churn_data
        from labs.common.model import TrainParams, train_model
        from labs.common.registration import register_version
        from labs.common.serving.server import serve_in_background
        from labs.common.tracking import OFFLINE_ENV, configure_tracking
        from labs.scaling.throughput import http_curve, inprocess_curve

        os.environ.update(OFFLINE_ENV)
        import mlflow

        model = train_model(make_churn_data(4000, seed=14), TrainParams(seed=14))
        frame = make_churn_data(2000, seed=15)
        configure_tracking()
        version, _ = register_version(
            mlflow.MlflowClient(), "bench-scaling", model, experiment="bench-scaling"
        )
        inproc = inprocess_curve(model, frame, INPROCESS, SECONDS)
        log = Path(tmp) / "predictions.sqlite"
        with serve_in_background(f"models:/bench-scaling/{version}", log_path=log) as server:
            http = http_curve(server.url, frame, HTTP, SECONDS)

    print(f"{'where':12} {'batch':>6} {'rows/s':>10} {'ms/call':>9}")
    for r in inproc:
        print(f"{'in-process':12} {r['batch']:6d} {r['rows_per_s']:10.0f} {r['ms_per_call']:9.2f}")
    for r in http:
        print(f"{'HTTP':12} {r['batch']:6d} {r['rows_per_s']:10.0f} {r['p50_ms']:9.2f}")
    gains = {
        "inprocess_gain": inproc[-1]["rows_per_s"] / inproc[0]["rows_per_s"],
        "http_gain": http[-1]["rows_per_s"] / http[0]["rows_per_s"],
    }
    print(
        f"\nbatch {INPROCESS[-1]} vs row by row: {gains['inprocess_gain']:.0f}× in-process; "
        f"batch {HTTP[-1]} vs 1 over HTTP: {gains['http_gain']:.0f}×"
    )
    print(f"cores: {os.cpu_count()}, load average: {os.getloadavg()[0]:.2f}")
    out = ROOT / "reports" / "bench"
    out.mkdir(parents=True, exist_ok=True)
    figures = {"inprocess": inproc, "http": http, **gains, "seconds_per_point": SECONDS}
    (out / "scaling.json").write_text(json.dumps(figures, indent=2) + "\n")
    print(f"written: {out / 'scaling.json'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
