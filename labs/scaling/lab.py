"""How do you scale a model to many predictions, and when do you score on the edge instead?

Every answer to "how do we serve more?" is a measurement on this machine, in order:

1. **Batching.** The same model scores row by row and in batches of up to a thousand rows,
   in-process and over HTTP through the project's serving app.
2. **Micro-batching in the server.** Single-row requests wait a few milliseconds in a queue
   and are scored together: throughput gained at high load, latency paid at low load.
3. **Workers.** The serving app under one and two uvicorn workers — and what two shared
   cores allow.
4. **Autoscaling on paper.** The Kubernetes HPA rule run over a day-shaped traffic curve
   from the production stream, each replica's capacity the throughput measured in 3.
5. **Smaller models.** Accuracy, size and latency from a logistic regression to a large
   forest, in scikit-learn and ONNX Runtime: the smallest model within one AUC point.
6. **Edge vs cloud, and cost.** Local latency against the serving app reached through Envoy
   slowing every request by a round trip (measured at the client), and what a million
   predictions cost serverless or always-on, with right-sizing, autoscaling, reserved and
   spot capacity as rows — a cost *model* on the price list in ``params.yaml`` (with the date
   it was taken) and the measured compute time.

The parts the lab demonstrates are parameters of :func:`run` (keyword-only, the real ones by
default): how a batch is scored, the multi-worker app, the edge device, how the model size is
chosen, the serverless bill and the spot restart model. ``counterfactuals.py`` replaces them
with broken ones that the claims must catch.

Timings depend on the machine and on what else runs on it; the claims compare measurements
taken side by side, never against fixed times.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np

from labs.common.catalogue import topic
from labs.common.data import DAY, make_churn_data, make_production_stream
from labs.common.model import TrainParams, train_model
from labs.common.results import LabResult, artifact_path, claim_metrics
from labs.common.serving.predlog import remove_log
from labs.common.sidecar import sidecar
from labs.common.tracking import RunRecord, dump_model, log_run_record, warm_up_tracking
from labs.scaling import costs, throughput, workers_app
from labs.scaling.claims import make_claims
from labs.scaling.edge import EdgeDevice, first_record, measure_edge, on_device, time_device
from labs.scaling.hpa import diurnal_arrivals, simulate_hpa, traffic_curve
from labs.scaling.models import ChooseModel, measure_candidates, smallest_within, train_candidates
from labs.scaling.params import ScalingParams
from labs.scaling.report import plot_autoscaling, plot_throughput, tables_text, write_tables

QUESTION = topic("scaling").question
EXPERIMENT = topic("scaling").experiment


def run(
    params: ScalingParams,
    out_dir: Path,
    echo: Callable[[str], None] = lambda _: None,
    *,
    score_rows: throughput.ScoreRows = throughput.predict_in_one_call,
    app_factory: Callable[[], Any] = workers_app.app,
    edge_device: EdgeDevice = on_device,
    choose_model: ChooseModel = smallest_within,
    serverless_cost: costs.ServerlessCost = costs.serverless_cost_per_prediction,
    hours_with_restarts: costs.HoursWithRestarts = costs.expected_hours_with_restarts,
) -> LabResult:
    """Measure batching, micro-batching, workers, autoscaling, model size and cost, with the
    components given (module-level, so the servers' processes can import them)."""
    from labs.common.proxy import ProxySpec, start_proxy
    from labs.common.serving.server import serve_in_background

    out_dir.mkdir(parents=True, exist_ok=True)
    log_path = out_dir / "predictions.sqlite"
    remove_log(log_path)
    m: dict[str, Any] = {}  # every measurement, by claim

    # --- Setup: the slow starts overlap ------------------------------------------------------
    # The sidecar imports MLflow and registers the served model; the project's serving app
    # imports its stack and waits for the model URI; two more servers (two uvicorn workers, the
    # micro-batching demo) load the model file this process writes, and Envoy starts in front
    # of the serving app; meanwhile this process trains.
    with (
        sidecar() as side,
        serve_in_background(None, log_path=log_path, server_log=out_dir / "server.log") as app,
    ):
        side.submit(warm_up_tracking)
        echo(f"Training the served model on {params.train_rows} customers …")
        train = make_churn_data(params.train_rows, seed=params.seed)
        holdout = make_churn_data(params.holdout_rows, seed=params.seed + 1)
        model = train_model(train, TrainParams(seed=params.seed))
        model_file = out_dir / "model.skops"
        dump_model(model, model_file)
        registered = side.submit(register_served, str(model_file), params.registered_model)
        # The "cloud": the serving app behind Envoy, which delays every request by the RTT.
        cloud = ProxySpec({"cloud": [int(app.url.rsplit(":", 1)[1])]}, primary="cloud",
                          health_check=None, delay_ms=params.cloud_rtt_ms)  # fmt: skip
        # One and two workers of the same app (a baseline that differs only in the worker count).
        with (
            throughput.workers_server(model_file, 1, out_dir, app_factory=app_factory) as one,
            throughput.workers_server(model_file, 2, out_dir, app_factory=app_factory) as two,
            throughput.microbatch_server(
                model_file, out_dir, params.microbatch_max_wait_ms, params.microbatch_max_rows,
                score_rows,
            ) as micro,
            start_proxy(cloud, workdir=out_dir / "envoy") as proxy,
        ):  # fmt: skip
            echo(f"Training {len(params.model_sizes)} model sizes while the servers start …")
            trained = train_candidates(params.model_sizes, train, params.seed)
            model_uri, version = registered.result()
            app.bind(model_uri)
            app.wait_ready()
            throughput.wait_workers(one, 1)
            throughput.wait_workers(two, 2)
            micro.wait_healthy("/health", 90)
            echo(f"Servers ready: serving app {app.url} ({model_uri}), 1 and 2 workers "
                 f"{one.url} {two.url}, micro-batching {micro.url}, cloud {proxy.url}")  # fmt: skip

            # --- 1. Batching: row by row vs batches, in-process and over HTTP ---------------
            echo("1. Batching: in-process curve …")
            m["inprocess"] = throughput.inprocess_curve(
                model, holdout, params.inprocess_batch_sizes, params.point_seconds, score_rows
            )
            echo("1. Batching: HTTP curve against the serving app …")
            m["http"] = throughput.http_curve(
                app.url, holdout, params.http_batch_sizes, params.point_seconds
            )

            # --- 3. Workers: one vs two uvicorn workers, same app, same load ----------------
            echo(f"3. Workers: {params.workers_clients} clients, {params.workers_batch_rows} "
                 "rows per request, against 1 and 2 workers …")  # fmt: skip
            body = throughput.rows_json(holdout, params.workers_batch_rows)
            load = {"clients": params.workers_clients, "seconds": params.workers_seconds}
            # The noise first (one worker against itself): the bound the speed-up must clear
            # is fixed before the speed-up is measured.
            m["workers_noise"] = throughput.noise_share(
                one.url, body, params.workers_batch_rows, **load
            )
            m["workers"] = throughput.alternating_load(
                {1: one.url, 2: two.url}, body, params.workers_batch_rows, **load
            )
            m["loadavg"] = os.getloadavg()[0]

            # --- 2. Micro-batching: direct vs queued, at several loads ----------------------
            echo(f"2. Micro-batching (wait ≤ {params.microbatch_max_wait_ms:g} ms): loads "
                 f"{list(params.microbatch_loads)} clients …")  # fmt: skip
            m["micro"] = measure_microbatching(micro.url, holdout, params)

            # --- 6a. Edge vs cloud: on the device vs through the slowed network ------------
            echo(f"6. Edge vs cloud: on the device vs through Envoy (+{params.cloud_rtt_ms:g} ms)")
            m["edge"] = measure_edge(
                edge_device, model, holdout, proxy, m["http"][0]["p50_ms"],
                rtt_ms=params.cloud_rtt_ms, seconds=params.point_seconds,
            )  # fmt: skip
            # What a serverless function computes per prediction: the serving app's own
            # validate-and-score, timed alone (whatever device the edge claim was given).
            m["compute_ms"], _ = time_device(
                on_device(model, proxy.url), first_record(holdout), params.point_seconds
            )
        app.stop()

        # --- 5. Smaller models ------------------------------------------------------------
        echo("5. Smaller models: quality, size, latency (scikit-learn and ONNX) …")
        m["models"] = measure_candidates(
            trained, holdout, batch_rows=1000, repeats=params.latency_repeats,
            with_onnx=params.with_onnx, train=train,
        )  # fmt: skip
        m["chosen"] = choose_model(m["models"], params.auc_budget)

        # --- 4. Autoscaling on paper ------------------------------------------------------
        echo("4. The HPA over the production stream's daily curve …")
        capacity = m["workers"][0]["rows_per_s"]
        m["hpa"] = simulate_traffic(params, capacity)

        # --- 6b. Cost ---------------------------------------------------------------------
        m["costs"] = cost_model(params, m, serverless_cost, hours_with_restarts)

        claims = make_claims(params, m)
        echo("")
        echo(tables_text(params, m))
        files = [
            plot_throughput(params, m, out_dir / "throughput.png"),
            plot_autoscaling(params, m, out_dir / "autoscaling.png"),
            write_tables(params, m, out_dir / "tables.md"),
        ]
        echo(f"Logging to MLflow (experiment {EXPERIMENT}) …")
        record = RunRecord(
            name="scaling-lab",
            params={**asdict(params), "model_uri": model_uri, "model_version": version},
            metrics=claim_metrics(claims),
            artifacts=[str(f) for f in files],
        )
        run_id = side.submit(log_run_record, EXPERIMENT, record).result()

    return LabResult(
        lab="scaling",
        question=QUESTION,
        claims=claims,
        artifacts=[artifact_path(f) for f in files],
        mlflow={"experiment": EXPERIMENT, "run_id": run_id, "model_uri": model_uri},
    )


def register_served(model_file: str, name: str) -> tuple[str, str]:
    """Find-or-register the model file's bytes as a version of ``name`` (same seed, same
    version); return its pinned URI and version. Runs in the sidecar; no alias moves."""
    import mlflow

    from labs.common.registration import register_version
    from labs.common.tracking import configure_tracking, load_model_file

    configure_tracking()
    model = load_model_file(Path(model_file))
    version, _ = register_version(
        mlflow.MlflowClient(), name, model, experiment=EXPERIMENT, run_name="served"
    )
    return f"models:/{name}/{version}", version


def measure_microbatching(url: str, frame: Any, params: ScalingParams) -> list[dict[str, Any]]:
    """Single-row requests at each load, scored at once and through the micro-batcher; the
    server's counters give the batches formed and the time requests spent queued."""
    import httpx

    body = throughput.rows_json(frame, 1)
    out = []
    for clients in params.microbatch_loads:
        row: dict[str, Any] = {"clients": clients}
        direct = throughput.load(url, body, 1, clients=clients, seconds=params.load_seconds)
        before = httpx.get(f"{url}/stats", timeout=10).json()
        batched = throughput.load(
            url, body, 1, clients=clients, seconds=params.load_seconds, path="/predict-batched"
        )
        after = httpx.get(f"{url}/stats", timeout=10).json()
        d = {k: after[k] - before[k] for k in after}
        row |= {
            "direct_rps": direct["requests_per_s"],
            "batched_rps": batched["requests_per_s"],
            "gain": batched["requests_per_s"] / direct["requests_per_s"],
            "direct_p50_ms": direct["p50_ms"],
            "batched_p50_ms": batched["p50_ms"],
            "mean_batch_requests": d["requests"] / max(d["batches"], 1),
            "mean_queue_wait_ms": d["wait_s"] / max(d["requests"], 1) * 1e3,
            "errors": direct["error_share"] + batched["error_share"],
        }
        out.append(row)
    return out


def simulate_traffic(params: ScalingParams, capacity: float) -> dict[str, Any]:
    """The stream's rows spread over each day, the HPA run over it with and without its
    damping (tolerance and stabilisation window)."""
    stream = make_production_stream(params.hpa_days, params.hpa_rows_per_day, seed=params.seed + 3)
    arrivals = diurnal_arrivals(
        stream[DAY].to_numpy(), params.seed + 4, params.hpa_peak_hour, params.hpa_trough_share,
        params.hpa_spike,
    )  # fmt: skip
    # The curve is scaled to this machine: its usual daily peak (95th percentile, the campaign
    # aside) needs hpa_peak_replicas replicas of the measured capacity at the target load. A
    # fixed number of requests fitted in the minimum replicas on a fast machine.
    per_row = traffic_curve(arrivals, params.hpa_days, params.hpa_sync_period_s, 1.0)
    requests_per_row = (
        params.hpa_peak_replicas * capacity * params.hpa_target_utilization
    ) / float(np.quantile(per_row, 0.95))
    load = per_row * requests_per_row
    damped = simulate_hpa(load, capacity, params.policy())
    undamped = simulate_hpa(
        load, capacity, params.policy(tolerance=0.0, window_s=params.hpa_sync_period_s)
    )
    day, start, hours, _ = params.hpa_spike
    spike_end = day * 86400 + (start + hours) * 3600
    return {
        "capacity": capacity,
        "requests_per_row": requests_per_row,
        "damped": damped,
        "undamped": undamped,
        "spike_end_s": spike_end,
    }


def cost_model(
    params: ScalingParams,
    m: dict[str, Any],
    serverless_cost: costs.ServerlessCost = costs.serverless_cost_per_prediction,
    hours_with_restarts: costs.HoursWithRestarts = costs.expected_hours_with_restarts,
) -> dict[str, Any]:
    """Serving and training cost rows from the measured numbers (see :mod:`costs`), with the
    serverless bill and the spot restart model given; each also evaluated on either side of
    its break-even, where the claims check it."""
    prices = params.prices()
    trace = m["hpa"]["damped"]
    month_scale = costs.SECONDS_PER_MONTH / (params.hpa_days * 86400)
    per_month = float(trace.load.mean()) * costs.SECONDS_PER_MONTH
    compute_s = m["compute_ms"] / 1e3
    serving = costs.serving_rows(
        prices,
        predictions_per_month=per_month,
        compute_s=compute_s,
        static_replicas=trace.static_replicas(),
        overprovision=params.overprovision,
        hpa_replica_hours_per_month=trace.replica_hours * month_scale,
        min_replicas=params.hpa_min_replicas,
        serverless_cost=serverless_cost,
    )
    break_even = costs.break_even_per_month(prices, compute_s, params.hpa_min_replicas)
    always_on = costs.always_on_monthly(prices, params.hpa_min_replicas)
    # The largest model's measured training time, scaled linearly to production rows.
    largest = max(m["models"], key=lambda r: r["size_kb"])
    job_h = largest["train_s"] / params.train_rows * params.production_training_rows / 3600
    spot_even = costs.spot_break_even_hours(prices, hours_with_restarts)
    rate = prices.spot_interruptions_per_hour

    def spot_no_checkpoint_usd(hours: float) -> float:
        return hours_with_restarts(hours, rate, None) * prices.spot_hourly

    around = spot_even if np.isfinite(spot_even) else job_h  # no crossing: look at the job
    return {
        "predictions_per_month": per_month,
        "compute_s": compute_s,
        "serverless_per_million": serverless_cost(prices, compute_s) * 1e6,
        "break_even_per_month": break_even,
        "always_on_min_usd": always_on,
        # the cost model's serverless bill at half and twice the price list's break-even
        "serverless_usd_at_half_break_even": 0.5 * break_even * serverless_cost(prices, compute_s),
        "serverless_usd_at_twice_break_even": 2 * break_even * serverless_cost(prices, compute_s),
        "serving": serving,
        "job_model": largest["model"],
        "job_hours": job_h,
        "training": costs.training_rows(
            prices, job_h, params.checkpoint_hours, hours_with_restarts
        ),
        "spot_break_even_hours": spot_even,
        # spot without checkpoints vs on-demand for jobs half and twice the break-even length
        "spot_vs_on_demand_at_half": spot_no_checkpoint_usd(around / 2)
        / (around / 2 * prices.instance_hourly),
        "spot_vs_on_demand_at_twice": spot_no_checkpoint_usd(2 * around)
        / (2 * around * prices.instance_hourly),
    }
