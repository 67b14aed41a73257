"""The scaling lab's claims, each decided by the numbers measured in :mod:`labs.scaling.lab`."""

from __future__ import annotations

import os
from typing import Any

import numpy as np

from labs.common.results import Claim
from labs.scaling.hpa import HpaTrace
from labs.scaling.params import ScalingParams


def make_claims(params: ScalingParams, m: dict[str, Any]) -> list[Claim]:
    return [
        batching(params, m),
        microbatching(params, m),
        workers(params, m),
        autoscaling(params, m),
        smaller_models(params, m),
        edge_vs_cloud(params, m),
        serving_cost(params, m),
        spot_training(params, m),
    ]


def batching(params: ScalingParams, m: dict[str, Any]) -> Claim:
    inproc, http = m["inprocess"], m["http"]
    gain_in = inproc[-1]["rows_per_s"] / inproc[0]["rows_per_s"]
    gain_http = http[-1]["rows_per_s"] / http[0]["rows_per_s"]
    # The price of a big batch: one request takes longer (the first row waits for the last).
    slower_call = http[-1]["p50_ms"] > http[0]["p50_ms"]
    return Claim(
        "batching_raises_throughput",
        f"Scoring in batches raises throughput by more than {params.batching_gain_min:g}× over "
        "row by row, in-process and over HTTP; each big request takes longer",
        gain_in > params.batching_gain_min and gain_http > params.batching_gain_min
        and slower_call,
        {
            "inprocess_row_by_row_rows_per_s": inproc[0]["rows_per_s"],
            f"inprocess_batch_{inproc[-1]['batch']}_rows_per_s": inproc[-1]["rows_per_s"],
            "inprocess_gain": gain_in,
            "http_row_by_row_rows_per_s": http[0]["rows_per_s"],
            f"http_batch_{http[-1]['batch']}_rows_per_s": http[-1]["rows_per_s"],
            "http_gain": gain_http,
            "http_p50_ms_batch_1": http[0]["p50_ms"],
            f"http_p50_ms_batch_{http[-1]['batch']}": http[-1]["p50_ms"],
        },
    )  # fmt: skip


def microbatching(params: ScalingParams, m: dict[str, Any]) -> Claim:
    low, high = m["micro"][0], m["micro"][-1]
    # At the lowest load nobody shares a batch: each request waits out the timer, for nothing.
    waits = low["mean_queue_wait_ms"] >= 0.5 * params.microbatch_max_wait_ms
    alone = low["mean_batch_requests"] < 1.5
    return Claim(
        "microbatching_trades_latency_for_throughput",
        f"Micro-batching (wait ≤ {params.microbatch_max_wait_ms:g} ms) serves at least "
        f"{params.microbatch_gain_min:g}× more single-row requests at {high['clients']} "
        f"clients; at {low['clients']} client it forms no batches and only adds the wait",
        high["gain"] >= params.microbatch_gain_min and high["mean_batch_requests"] > 2
        and waits and alone and high["errors"] == 0,
        {
            "high_load_clients": high["clients"],
            "high_load_direct_rps": high["direct_rps"],
            "high_load_batched_rps": high["batched_rps"],
            "high_load_gain": high["gain"],
            "high_load_mean_batch_requests": high["mean_batch_requests"],
            "low_load_gain": low["gain"],
            "low_load_mean_batch_requests": low["mean_batch_requests"],
            "low_load_mean_queue_wait_ms": low["mean_queue_wait_ms"],
            "low_load_direct_p50_ms": low["direct_p50_ms"],
            "low_load_batched_p50_ms": low["batched_p50_ms"],
        },
    )  # fmt: skip


def workers(params: ScalingParams, m: dict[str, Any]) -> Claim:
    one, two = m["workers"]
    speedup = two["rows_per_s"] / one["rows_per_s"]
    cores = os.cpu_count() or 1
    # The gain must clear the noise of the same measurement of one server against itself,
    # taken before it (and at least workers_gain_min): a second worker that does nothing fails.
    required = 1 + max(params.workers_gain_min, m["workers_noise"])
    # Two workers cannot do more than twice the work of one, nor more than the cores allow;
    # a measurement that says so is off by its noise at most.
    ceiling = min(2, cores) * (1 + m["workers_noise"])
    return Claim(
        "workers_bounded_by_cores",
        "A second uvicorn worker adds throughput only as far as free cores allow: it gains "
        f"more than the measurement's noise (and at least {params.workers_gain_min:.0%}), and "
        f"on this {cores}-core box, shared with the load generator, 2 workers stay below 2× "
        "(give or take that noise)",
        required < speedup < ceiling
        and two["error_share"] == 0 and one["error_share"] == 0,
        {
            "cores": cores,
            "load_average": m["loadavg"],
            "one_worker_rows_per_s": one["rows_per_s"],
            "two_workers_rows_per_s": two["rows_per_s"],
            "speedup": speedup,
            "a_a_noise_share": m["workers_noise"],
            "required_speedup": required,
            "ceiling_speedup": ceiling,
            "efficiency_per_worker": speedup / 2,
        },
    )  # fmt: skip


def replicas_after(trace: HpaTrace, start_s: float, seconds: float) -> float:
    """Mean replicas over ``seconds`` from ``start_s`` (e.g. the window after a spike ends)."""
    during = (trace.t_s >= start_s) & (trace.t_s < start_s + seconds)
    return float(trace.replicas[during].mean())


def autoscaling(params: ScalingParams, m: dict[str, Any]) -> Claim:
    hpa = m["hpa"]
    damped, undamped = hpa["damped"], hpa["undamped"]
    hours = len(damped.load) * params.hpa_sync_period_s / 3600
    static_hours = damped.static_replicas() * hours
    saving = 1 - damped.replica_hours / static_hours
    window = params.hpa_downscale_window_s
    held = replicas_after(damped, hpa["spike_end_s"], window)
    held_undamped = replicas_after(undamped, hpa["spike_end_s"], window)
    return Claim(
        "hpa_follows_daily_curve",
        "The HPA rule follows the daily curve with fewer replica-hours than a fixed deployment "
        "sized for the peak; its tolerance and scale-down window prevent flapping, and after "
        "the spike it keeps more replicas through the window than without it",
        damped.replicas.max() > damped.replicas.min() and saving > 0
        and undamped.scaling_events > damped.scaling_events
        and held > held_undamped
        and damped.overloaded_share < 0.05,
        {
            "capacity_per_replica_rows_per_s": hpa["capacity"],
            "peak_load_per_s": float(damped.load.max()),
            "max_replicas": int(damped.replicas.max()),
            "min_replicas": int(damped.replicas.min()),
            "replica_hours": damped.replica_hours,
            "static_replicas": damped.static_replicas(),
            "static_replica_hours": static_hours,
            "saving_share": saving,
            "scaling_events": damped.scaling_events,
            "scaling_events_without_damping": undamped.scaling_events,
            "replicas_in_window_after_spike": held,
            "replicas_in_window_after_spike_without_window": held_undamped,
            "overloaded_share": damped.overloaded_share,
        },
    )  # fmt: skip


def smaller_models(params: ScalingParams, m: dict[str, Any]) -> Claim:
    rows = m["models"]
    best = max(rows, key=lambda r: r["roc_auc"])
    chosen = m["chosen"]
    largest = max(rows, key=lambda r: r["size_kb"])
    tiniest = min(rows, key=lambda r: r["roc_auc"])
    measured: dict[str, Any] = {
        "best_model": best["model"],
        "best_roc_auc": best["roc_auc"],
        "chosen_model": chosen["model"],
        "chosen_roc_auc": chosen["roc_auc"],
        "chosen_size_kb": chosen["size_kb"],
        "chosen_parameters": chosen["parameters"],
        "chosen_1_row_ms": chosen["sklearn_1_row_ms"],
        "largest_model": largest["model"],
        "largest_size_kb": largest["size_kb"],
        "largest_parameters": largest["parameters"],
        "largest_roc_auc": largest["roc_auc"],
        "largest_1_row_ms": largest["sklearn_1_row_ms"],
        "worst_model": tiniest["model"],
        "worst_auc_gap": best["roc_auc"] - tiniest["roc_auc"],
    }
    ok = (
        best["roc_auc"] - chosen["roc_auc"] <= params.auc_budget
        and chosen["size_kb"] < largest["size_kb"]
        and chosen["sklearn_1_row_ms"] < largest["sklearn_1_row_ms"]
        and best["roc_auc"] - tiniest["roc_auc"] > params.auc_budget
    )
    if "onnx_1_row_ms" in chosen:
        measured["chosen_onnx_1_row_ms"] = chosen["onnx_1_row_ms"]
        measured["onnx_speedup_1_row_min"] = min(
            r["sklearn_1_row_ms"] / r["onnx_1_row_ms"] for r in rows
        )
        ok = ok and measured["onnx_speedup_1_row_min"] > 1
    return Claim(
        "smaller_model_within_budget",
        f"The smallest model within {params.auc_budget * 100:g} AUC point of the best is "
        "smaller and faster than the largest; too small a model loses more; ONNX Runtime "
        "scores one row faster than scikit-learn for every size",
        ok,
        measured,
    )


def edge_vs_cloud(params: ScalingParams, m: dict[str, Any]) -> Claim:
    e = m["edge"]
    return Claim(
        "edge_beats_cloud_latency",
        "Scoring on the device beats asking the cloud by more than the round trip: measured at "
        f"the client, through Envoy delaying each request {params.cloud_rtt_ms:g} ms; even the "
        "HTTP call on loopback alone costs more than scoring on the device",
        e["cloud_ms"] - e["edge_ms"] > params.cloud_rtt_ms and e["loopback_ms"] > e["edge_ms"]
        and e["cloud_error_share"] == 0 and e["cloud_requests_delayed"] >= e["cloud_requests"],
        dict(e),
    )  # fmt: skip


def serving_cost(params: ScalingParams, m: dict[str, Any]) -> Claim:
    c = m["costs"]
    by = {r["option"]: r["usd_per_month"] for r in c["serving"]}
    names = list(by)
    serverless, over, static, hpa, reserved, spot = (by[n] for n in names)
    cheaper_order = spot < reserved < hpa < static < over
    # The cost model's serverless bill against the break-even the price list gives.
    crosses = (
        c["serverless_usd_at_half_break_even"] < c["always_on_min_usd"]
        < c["serverless_usd_at_twice_break_even"]
    )  # fmt: skip
    return Claim(
        "cost_break_even",
        f"Cost model (arithmetic on the {params.prices_taken} price list and the measured "
        "compute time, not a bill): serverless is cheaper than "
        f"{params.hpa_min_replicas} always-on pods below the price list's break-even traffic "
        "and dearer above it; for always-on, right-sizing, autoscaling and reserved or spot "
        "capacity each lower the bill",
        cheaper_order and crosses and c["break_even_per_month"] > 0,
        {
            "predictions_per_month": c["predictions_per_month"],
            "billed_compute_ms": c["compute_s"] * 1e3,
            "serverless_usd_per_million": c["serverless_per_million"],
            "break_even_predictions_per_month": c["break_even_per_month"],
            "always_on_min_replicas_usd_per_month": c["always_on_min_usd"],
            "serverless_usd_at_half_break_even": c["serverless_usd_at_half_break_even"],
            "serverless_usd_at_twice_break_even": c["serverless_usd_at_twice_break_even"],
            "serverless_usd_per_month": serverless,
            "not_right_sized_usd_per_month": over,
            "right_sized_usd_per_month": static,
            "autoscaled_usd_per_month": hpa,
            "reserved_baseline_usd_per_month": reserved,
            "spot_burst_usd_per_month": spot,
            "cheapest": min(by, key=by.__getitem__),
        },
        kind="model",
    )


def spot_training(params: ScalingParams, m: dict[str, Any]) -> Claim:
    c = m["costs"]
    ondemand, no_ckpt, ckpt = c["training"]
    return Claim(
        "spot_rework_priced",
        f"Cost model (arithmetic on the {params.prices_taken} price list, an assumed "
        f"{params.spot_interruptions_per_hour:g} interruptions per hour and the measured "
        "training time): spot capacity trains cheaper despite the re-work interruptions cause, "
        "as long as the job checkpoints; without checkpoints the re-work grows with the job "
        "and spot loses beyond the break-even job length",
        ckpt["usd"] < ondemand["usd"] and ckpt["rework_hours"] < no_ckpt["rework_hours"]
        and np.isfinite(c["spot_break_even_hours"])
        and c["spot_vs_on_demand_at_half"] < 1 < c["spot_vs_on_demand_at_twice"],
        {
            "job_model": c["job_model"],
            "job_hours": c["job_hours"],
            "on_demand_usd": ondemand["usd"],
            "spot_no_checkpoint_usd": no_ckpt["usd"],
            "spot_no_checkpoint_rework_h": no_ckpt["rework_hours"],
            "spot_checkpoint_usd": ckpt["usd"],
            "spot_checkpoint_rework_h": ckpt["rework_hours"],
            "spot_break_even_job_hours": c["spot_break_even_hours"],
            "spot_cost_share_of_on_demand_at_half_break_even": c["spot_vs_on_demand_at_half"],
            "spot_cost_share_of_on_demand_at_twice_break_even": c["spot_vs_on_demand_at_twice"],
        },
        kind="model",
    )  # fmt: skip
