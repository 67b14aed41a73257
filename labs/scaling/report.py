"""What the scaling lab leaves for people: the printed tables, ``tables.md`` and two plots."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from labs.common.plots import from_zero, new_figure, save_figure
from labs.common.tables import markdown_table, text_table
from labs.scaling.params import ScalingParams


def _sections(params: ScalingParams, m: dict[str, Any]) -> list[tuple[str, list[dict[str, Any]]]]:
    curve = [
        {"where": "in-process", "batch": r["batch"], "rows_per_s": round(r["rows_per_s"])}
        for r in m["inprocess"]
    ] + [
        {"where": "HTTP", "batch": r["batch"], "rows_per_s": round(r["rows_per_s"]),
         "p50_ms": r["p50_ms"]}
        for r in m["http"]
    ]  # fmt: skip
    micro = [
        {k: r[k] for k in ("clients", "direct_rps", "batched_rps", "gain", "direct_p50_ms",
                           "batched_p50_ms", "mean_batch_requests", "mean_queue_wait_ms")}
        for r in m["micro"]
    ]  # fmt: skip
    workers = [
        {"workers": r["workers"], "clients": r["clients"], "rows_per_s": round(r["rows_per_s"]),
         "p50_ms": r["p50_ms"], "p95_ms": r["p95_ms"]}
        for r in m["workers"]
    ]  # fmt: skip
    hpa = []
    for name, trace in (("HPA (tolerance, window)", m["hpa"]["damped"]),
                        ("no tolerance, no window", m["hpa"]["undamped"])):  # fmt: skip
        hpa.append({
            "policy": name, "min": int(trace.replicas.min()), "max": int(trace.replicas.max()),
            "replica_hours": trace.replica_hours, "scaling_events": trace.scaling_events,
            "overloaded_share": trace.overloaded_share,
        })  # fmt: skip
    models = [{k: v for k, v in r.items() if k != "train_s"} for r in m["models"]]
    edge = [{k: round(v, 3) for k, v in m["edge"].items()}]
    c = m["costs"]
    serving = [
        {**r, "usd_per_month": round(r["usd_per_month"], 2),
         "usd_per_million": round(r["usd_per_million"], 4)}
        for r in c["serving"]
    ]  # fmt: skip
    training = [{**r, "usd": round(r["usd"], 2)} for r in c["training"]]
    return [
        ("1. Batching: rows per second by batch size", curve),
        (f"2. Micro-batching (wait ≤ {params.microbatch_max_wait_ms:g} ms), single-row "
         "requests", micro),
        (f"3. Workers ({m['workers'][0]['batch']} rows per request; one worker against "
         f"itself first: {m['workers_noise']:.1%} apart)", workers),
        (f"4. Autoscaling over {params.hpa_days} days (capacity "
         f"{m['hpa']['capacity']:.0f} rows/s per replica)", hpa),
        ("5. Model sizes", models),
        (f"6. Edge vs cloud (Envoy delays each cloud request {params.cloud_rtt_ms:g} ms)", edge),
        (f"6. Serving cost at {c['predictions_per_month']:.3g} predictions/month "
         f"(prices taken {params.prices_taken}); serverless = always-on "
         f"({params.hpa_min_replicas} pods) at {c['break_even_per_month']:.3g}/month", serving),
        (f"6. Training {c['job_model']} on {params.production_training_rows:.3g} rows "
         f"({c['job_hours']:.1f} h); spot without checkpoints loses beyond "
         f"{c['spot_break_even_hours']:.0f} h", training),
    ]  # fmt: skip


def tables_text(params: ScalingParams, m: dict[str, Any]) -> str:
    return "\n\n".join(text_table(rows, title=title) for title, rows in _sections(params, m))


def write_tables(params: ScalingParams, m: dict[str, Any], path: Path) -> Path:
    parts = [f"### {title}\n\n{markdown_table(rows)}" for title, rows in _sections(params, m)]
    path.write_text("# Scaling lab: measured tables\n\n" + "\n\n".join(parts) + "\n")
    return path


def plot_throughput(params: ScalingParams, m: dict[str, Any], path: Path) -> Path:
    """Batching curve; micro-batching throughput and latency by load; workers."""
    fig, ((curve, micro), (latency, workers)) = new_figure(2, 2)
    for name, rows in (("in-process", m["inprocess"]), ("HTTP", m["http"])):
        curve.plot([r["batch"] for r in rows], [r["rows_per_s"] for r in rows], "o-", label=name)
    curve.set(xscale="log", yscale="log", xlabel="rows per call (batch size)",
              ylabel="rows scored per second", title="1. Batching")  # fmt: skip
    curve.legend()
    loads = [r["clients"] for r in m["micro"]]
    for key, label in (("direct", "scored at once"), ("batched", "micro-batched")):
        micro.plot(loads, [r[f"{key}_rps"] for r in m["micro"]], "o-", label=label)
        latency.plot(loads, [r[f"{key}_p50_ms"] for r in m["micro"]], "o-", label=label)
    micro.set(xscale="log", xlabel="concurrent clients", ylabel="requests per second",
              title="2. Micro-batching: throughput")  # fmt: skip
    latency.set(xscale="log", xlabel="concurrent clients", ylabel="median latency (ms)",
                title="2. Micro-batching: latency")  # fmt: skip
    from_zero(micro)
    from_zero(latency)
    micro.legend()
    latency.legend()
    counts = [str(r["workers"]) for r in m["workers"]]
    workers.bar(counts, [r["rows_per_s"] for r in m["workers"]], label="rows per second")
    workers.set(xlabel="uvicorn workers", ylabel="rows scored per second",
                title="3. Workers on a 2-core box")  # fmt: skip
    save_figure(fig, path)
    return path


def plot_autoscaling(params: ScalingParams, m: dict[str, Any], path: Path) -> Path:
    """Load against ready capacity, and replicas over time with and without damping."""
    hpa = m["hpa"]
    damped, undamped = hpa["damped"], hpa["undamped"]
    hours = damped.t_s / 3600
    fig, (top, bottom) = new_figure(2, 1, size=(9, 6.5), sharex=True)
    top.plot(hours, damped.load, label="load (predictions/s)", linewidth=0.8)
    top.plot(hours, damped.ready * hpa["capacity"], label="capacity of ready replicas",
             linewidth=1.2)  # fmt: skip
    top.set(ylabel="predictions per second", title="4. Traffic and serving capacity")
    from_zero(top)
    top.legend()
    bottom.plot(hours, undamped.replicas, label="no tolerance, no window", linewidth=0.8)
    bottom.plot(hours, damped.replicas, label="HPA (tolerance 0.1, 5-min window)", linewidth=1.5)
    bottom.set(xlabel="hours since the stream began", ylabel="replicas",
               title="4. Replicas over time")  # fmt: skip
    from_zero(bottom)
    bottom.legend()
    save_figure(fig, path)
    return path
