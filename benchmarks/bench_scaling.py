"""Scaling benchmark: the lab's timed goals, measured longer than the lab does, and checked.

- the batching curve: rows per second of the churn model scored row by row and in batches,
  in-process (``predict_proba``) and over HTTP (the project's serving app, ``POST /predict``,
  one client, keep-alive), each point measured for ``SECONDS``; goal: the largest batch beats
  row by row by more than ``batching_gain_min`` in both;
- micro-batching: single-row requests at the lab's loads, at once vs through the lab's
  micro-batching server; goal: at least ``microbatch_gain_min`` more requests per second at
  the highest load;
- workers: the serving app under 1 and 2 uvicorn workers; goal: the speed-up is above
  1 + max(``workers_gain_min``, the A/A noise measured first) and below 2.

Settings and goals come from ``params.yaml`` → ``scaling``. Prints the figures and each goal,
writes reports/bench/scaling.json and **exits 1 if a goal is missed** (the tests assert no
times; this is where the times are checked). Uses a throw-away MLflow store; leaves nothing
behind. Timings depend on the machine and its load: run it on a quiet machine.
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
from dataclasses import replace
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SECONDS = 1.0


def main() -> int:
    with tempfile.TemporaryDirectory(prefix="bench-scaling-") as tmp:
        os.environ["MLFLOW_TRACKING_URI"] = f"sqlite:///{Path(tmp) / 'mlflow.db'}"
        from labs.common.data import make_churn_data
        from labs.common.model import TrainParams, train_model
        from labs.common.params import params_for
        from labs.common.registration import register_version
        from labs.common.serving.server import serve_in_background
        from labs.common.tracking import OFFLINE_ENV, configure_tracking, dump_model
        from labs.scaling import throughput
        from labs.scaling.lab import measure_microbatching
        from labs.scaling.params import ScalingParams

        os.environ.update(OFFLINE_ENV)
        import mlflow

        p = params_for(ScalingParams, "scaling")
        model = train_model(make_churn_data(p.train_rows, seed=p.seed), TrainParams(seed=p.seed))
        frame = make_churn_data(p.holdout_rows, seed=p.seed + 1)
        model_file = Path(tmp) / "model.skops"
        dump_model(model, model_file)
        configure_tracking()
        version, _ = register_version(
            mlflow.MlflowClient(), "bench-scaling", model, experiment="bench-scaling"
        )
        inproc = throughput.inprocess_curve(model, frame, p.inprocess_batch_sizes, SECONDS)
        log = Path(tmp) / "predictions.sqlite"
        out = Path(tmp)
        with (
            serve_in_background(f"models:/bench-scaling/{version}", log_path=log) as server,
            throughput.workers_server(model_file, 1, out, log_level="warning") as one_w,
            throughput.workers_server(model_file, 2, out, log_level="warning") as two,
            throughput.microbatch_server(
                model_file, out, p.microbatch_max_wait_ms, p.microbatch_max_rows
            ) as micro,
        ):
            throughput.wait_workers(one_w, 1)
            throughput.wait_workers(two, 2)
            micro.wait_healthy("/health", 90)
            http = throughput.http_curve(server.url, frame, p.http_batch_sizes, SECONDS)
            mb = measure_microbatching(micro.url, frame, replace(p, load_seconds=2 * SECONDS))
            body = throughput.rows_json(frame, p.workers_batch_rows)
            load = {"clients": p.workers_clients, "seconds": 2 * p.workers_seconds}
            noise = throughput.noise_share(one_w.url, body, p.workers_batch_rows, **load)
            one, two_w = throughput.alternating_load(
                {1: one_w.url, 2: two.url}, body, p.workers_batch_rows, **load
            )

    print(f"{'where':12} {'batch':>6} {'rows/s':>10} {'ms/call':>9}")
    for r in inproc:
        print(f"{'in-process':12} {r['batch']:6d} {r['rows_per_s']:10.0f} {r['ms_per_call']:9.2f}")
    for r in http:
        print(f"{'HTTP':12} {r['batch']:6d} {r['rows_per_s']:10.0f} {r['p50_ms']:9.2f}")
    print(f"\n{'clients':>7} {'direct req/s':>13} {'batched req/s':>14} {'gain':>6}")
    for r in mb:
        print(
            f"{r['clients']:7d} {r['direct_rps']:13.0f} {r['batched_rps']:14.0f} {r['gain']:6.2f}"
        )
    speedup = two_w["rows_per_s"] / one["rows_per_s"]
    required = 1 + max(p.workers_gain_min, noise)
    figures = {
        "inprocess": inproc,
        "http": http,
        "microbatching": mb,
        "inprocess_gain": inproc[-1]["rows_per_s"] / inproc[0]["rows_per_s"],
        "http_gain": http[-1]["rows_per_s"] / http[0]["rows_per_s"],
        "microbatch_gain": mb[-1]["gain"],
        "workers": [one, two_w],
        "workers_a_a_noise": noise,
        "workers_speedup": speedup,
        "workers_required_speedup": required,
        "seconds_per_point": SECONDS,
        "cores": os.cpu_count(),
        "load_average": os.getloadavg()[0],
    }
    goals = [
        (f"in-process batch {inproc[-1]['batch']} vs row by row > {p.batching_gain_min:g}×",
         figures["inprocess_gain"], figures["inprocess_gain"] > p.batching_gain_min),
        (f"HTTP batch {http[-1]['batch']} vs row by row > {p.batching_gain_min:g}×",
         figures["http_gain"], figures["http_gain"] > p.batching_gain_min),
        (f"micro-batching at {mb[-1]['clients']} clients ≥ {p.microbatch_gain_min:g}×",
         figures["microbatch_gain"], figures["microbatch_gain"] >= p.microbatch_gain_min),
        (f"2 workers vs 1 in ({required:.2f}×, 2×) (A/A noise {noise:.1%})",
         speedup, required < speedup < 2),
    ]  # fmt: skip
    print()
    for text, value, ok in goals:
        print(f"{'ok    ' if ok else 'MISSED'} {text}: {value:.2f}×")
    print(f"cores: {os.cpu_count()}, load average: {os.getloadavg()[0]:.2f}")
    figures["goals"] = [{"goal": t, "value": v, "met": ok} for t, v, ok in goals]
    reports = ROOT / "reports" / "bench"
    reports.mkdir(parents=True, exist_ok=True)
    (reports / "scaling.json").write_text(json.dumps(figures, indent=2) + "\n")
    print(f"written: {reports / 'scaling.json'}")
    return 0 if all(ok for _, _, ok in goals) else 1


if __name__ == "__main__":
    sys.exit(main())
