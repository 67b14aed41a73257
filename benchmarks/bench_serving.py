"""Serving benchmark: what validation, the prediction log and the metrics cost per request,
and how the server answers while another process holds the log's write lock.

1. Same machine, same client (one keep-alive connection, sequential requests, alternating
   blocks so a burst of load elsewhere hits every server alike), same bodies — one row and a
   50-row batch — sent to three servers, one worker each:
   - ``bare``: uvicorn with a no-op ASGI endpoint (reads the body, answers ``{}``): the floor;
   - ``fastapi``: a FastAPI route doing nothing with the body: the framework's share;
   - ``ours``: the serving app (strict JSON, schema validation, scoring, the prediction log
     written by its writer thread, Prometheus metrics).
   The ratio ours / bare is the price of everything a production endpoint does.
2. ``/health`` and ``/predict`` latency on our server with the log healthy and with another
   connection holding its write lock (``BEGIN IMMEDIATE``). Before issue #11.7 a locked log
   froze the event loop: ``/health`` took 4.8 s, then 30 s. Afterwards: every queued write
   lands once the lock is released (counted, not assumed).

Prints the figures; writes reports/bench/serving.json. No goals are asserted here or in tests.
Uses a throw-away MLflow store; leaves nothing behind.
"""

from __future__ import annotations

import json
import os
import sqlite3
import sys
import tempfile
import time
from pathlib import Path

from httptiming import register_champion, summary, time_requests

ROOT = Path(__file__).resolve().parents[1]
REQUESTS = {"one row": 1000, "50 rows": 400}  # per server, after warm-up
BLOCKS = 5
WARMUP = 50
LOCKED_HEALTH = 200  # /health requests while the log is locked
LOCKED_PREDICTS = 10  # /predict requests while the log is locked (each waits LOG_WAIT_S)
MODEL_NAME = "bench-serving"

# The floor: uvicorn and a raw ASGI app that drains the body and answers {} (200).
BARE_APP = """
import sys, uvicorn

async def app(scope, receive, send):
    if scope["type"] != "http":
        return
    more = True
    while more:
        message = await receive()
        more = message.get("more_body", False)
    await send({"type": "http.response.start", "status": 200,
                "headers": [(b"content-type", b"application/json")]})
    await send({"type": "http.response.body", "body": b"{}"})

uvicorn.run(app, host="127.0.0.1", port=int(sys.argv[1]), log_level="warning")
"""

# The framework's share: FastAPI routes that ignore the body.
FASTAPI_APP = """
import sys, uvicorn
from fastapi import FastAPI, Request

app = FastAPI()

@app.get("/health")
async def health():
    return {"status": "ok"}

@app.post("/predict")
async def predict(request: Request):
    await request.body()
    return {}

uvicorn.run(app, host="127.0.0.1", port=int(sys.argv[1]), log_level="warning")
"""


def compare_servers(clients: dict, bodies: dict[str, bytes]) -> dict[str, dict[str, dict]]:
    """{body name: {server: summary}} over alternating blocks."""
    out: dict[str, dict[str, dict]] = {}
    for body_name, payload in bodies.items():
        seconds: dict[str, list[float]] = {name: [] for name in clients}
        for client in clients.values():
            time_requests(client, "POST", "/predict", payload, WARMUP)
        for _ in range(BLOCKS):
            for name, client in clients.items():
                n = REQUESTS[body_name] // BLOCKS
                seconds[name] += time_requests(client, "POST", "/predict", payload, n)
        out[body_name] = {name: summary(s) for name, s in seconds.items()}
    return out


def locked_log(client, log_path: Path, payload: bytes) -> dict[str, dict]:
    """/health and /predict latency with the log healthy, then write-locked by another
    connection; then whether every queued write landed after the lock was released."""
    from labs.common.serving.predlog import log_counts

    healthy_health = summary(time_requests(client, "GET", "/health", None, LOCKED_HEALTH))
    before = log_counts(log_path)
    locker = sqlite3.connect(log_path, timeout=5, isolation_level=None)
    locker.execute("BEGIN IMMEDIATE")
    try:
        logged = []
        predict_s = []
        for _ in range(LOCKED_PREDICTS):
            start = time.perf_counter()
            answer = client.post(
                "/predict", content=payload, headers={"content-type": "application/json"}
            )
            predict_s.append(time.perf_counter() - start)
            logged.append(answer.json()["logged"])
        locked_health = summary(time_requests(client, "GET", "/health", None, LOCKED_HEALTH))
    finally:
        locker.rollback()
        locker.close()
    start = time.perf_counter()
    expected = (before[0] + LOCKED_PREDICTS, before[1] + LOCKED_PREDICTS)
    while log_counts(log_path) != expected and time.perf_counter() - start < 10:
        time.sleep(0.01)
    return {
        "health_log_healthy": healthy_health,
        "health_log_locked": locked_health,
        "predict_log_locked": summary(predict_s),
        "predict_logged_while_locked": {v: logged.count(v) for v in set(logged)},
        "landed_after_release": log_counts(log_path)[0] - before[0],
        "sent_while_locked": LOCKED_PREDICTS,
        "landed_within_s": time.perf_counter() - start,
    }


def main() -> int:
    import httpx

    from labs.common.processes import serve_process
    from labs.common.serving.server import serve_in_background
    from labs.common.tracking import OFFLINE_ENV

    os.environ.update(OFFLINE_ENV)
    with tempfile.TemporaryDirectory(prefix="bench-serving-") as tmp:
        os.environ["MLFLOW_TRACKING_URI"] = f"sqlite:///{Path(tmp) / 'mlflow.db'}"
        print("Registering the churn model in a temporary MLflow store …", flush=True)
        model_uri, rows = register_champion(MODEL_NAME, 50)
        bodies = {
            "one row": json.dumps({"rows": rows[:1]}).encode(),
            "50 rows": json.dumps({"rows": rows}).encode(),
        }
        log_path = Path(tmp) / "predictions.sqlite"
        print("Starting three servers (bare uvicorn, FastAPI no-op, ours) …", flush=True)
        python = sys.executable
        with (
            serve_process(
                lambda port: [python, "-c", BARE_APP, str(port)], log=Path(tmp) / "bare.log"
            ) as bare,
            serve_process(
                lambda port: [python, "-c", FASTAPI_APP, str(port)], log=Path(tmp) / "fastapi.log"
            ) as noop,
            serve_in_background(model_uri, log_path=log_path) as ours,
        ):
            servers = {"bare": bare.url, "fastapi": noop.url, "ours": ours.url}
            clients = {n: httpx.Client(base_url=u, timeout=60) for n, u in servers.items()}
            try:
                figures = compare_servers(clients, bodies)
                print("Locking the prediction log from another connection …", flush=True)
                locked = locked_log(clients["ours"], log_path, bodies["one row"])
            finally:
                for client in clients.values():
                    client.close()

    print(f"\n/predict, one client, one worker each, sequential (cores: {os.cpu_count()})")
    print(f"  {'body':8} {'server':8} {'req/s':>8} {'p50 ms':>8} {'p99 ms':>8} {'max ms':>8}")
    ratios = {}
    for body_name, by_server in figures.items():
        for name, s in by_server.items():
            print(
                f"  {body_name:8} {name:8} {s['requests_per_s']:8.0f} {s['p50_ms']:8.2f} "
                f"{s['p99_ms']:8.2f} {s['max_ms']:8.2f}"
            )
        ours, bare = by_server["ours"], by_server["bare"]
        ratios[body_name] = {
            "throughput_bare_over_ours": bare["requests_per_s"] / ours["requests_per_s"],
            "p50_ours_over_bare": ours["p50_ms"] / bare["p50_ms"],
            "p99_ours_over_bare": ours["p99_ms"] / bare["p99_ms"],
        }
        r = ratios[body_name]
        print(
            f"  {body_name}: ours serves {1 / r['throughput_bare_over_ours']:.2f}× bare "
            f"uvicorn's throughput (bare is {r['throughput_bare_over_ours']:.1f}× faster); "
            f"p50 {r['p50_ours_over_bare']:.1f}×, p99 {r['p99_ours_over_bare']:.1f}× bare's"
        )
    h, hl, pl = (
        locked[k] for k in ("health_log_healthy", "health_log_locked", "predict_log_locked")
    )
    print("\nWith another connection holding the log's write lock (was: /health 4.8 s, then 30 s)")
    print(f"  /health, log healthy: p50 {h['p50_ms']:.2f} ms, p99 {h['p99_ms']:.2f} ms")
    print(
        f"  /health, log locked:  p50 {hl['p50_ms']:.2f} ms, p99 {hl['p99_ms']:.2f} ms, "
        f"max {hl['max_ms']:.2f} ms"
    )
    print(
        f"  /predict, log locked: p50 {pl['p50_ms']:.0f} ms (waits for its write, then answers "
        f"{locked['predict_logged_while_locked']})"
    )
    print(
        f"  after release: {locked['landed_after_release']} of {locked['sent_while_locked']} "
        f"queued requests landed in the log within {locked['landed_within_s']:.2f} s"
    )
    print(f"load average: {os.getloadavg()[0]:.2f}")
    out = ROOT / "reports" / "bench"
    out.mkdir(parents=True, exist_ok=True)
    report = {
        "requests": REQUESTS,
        "predict": figures,
        "ratios": ratios,
        "locked_log": locked,
        "cores": os.cpu_count(),
        "load_average": os.getloadavg()[0],
    }
    (out / "serving.json").write_text(json.dumps(report, indent=2) + "\n")
    print("wrote reports/bench/serving.json")
    return 0


if __name__ == "__main__":
    sys.exit(main())
