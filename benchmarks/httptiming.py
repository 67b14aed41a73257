"""Helpers of the serving benchmarks: the model they serve (registered as champion in the
benchmark's throw-away MLflow store), and timing sequential HTTP requests on one client, with
their throughput and percentiles."""

from __future__ import annotations

import statistics
import sys
import time


def register_champion(name: str, rows: int) -> tuple[str, list[dict]]:
    """Train the churn model, register it as ``name``, point ``champion`` at it; return its
    URI and ``rows`` feature rows as JSON-ready dicts (request bodies)."""
    import mlflow

    from labs.common.data import CATEGORICAL_FEATURES, FEATURES, make_churn_data
    from labs.common.model import TrainParams, train_model
    from labs.common.registration import register_version
    from labs.common.registry import promote
    from labs.common.tracking import audit_log_path

    frame = make_churn_data(3000, seed=1)
    model = train_model(frame, TrainParams())
    client = mlflow.MlflowClient()
    version, _ = register_version(client, name, model, experiment=name)
    promote(client, name, version, reason="benchmark", audit_log=audit_log_path())
    features = frame[list(FEATURES)].astype({c: str for c in CATEGORICAL_FEATURES})
    return f"models:/{name}@champion", features.head(rows).to_dict(orient="records")


def time_requests(client, method: str, path: str, payload: bytes | None, n: int) -> list[float]:
    """Seconds per request for ``n`` sequential requests; every one must be a 200."""
    seconds = []
    headers = {"content-type": "application/json"}
    for _ in range(n):
        start = time.perf_counter()
        response = client.request(method, path, content=payload, headers=headers)
        seconds.append(time.perf_counter() - start)
        if response.status_code != 200:
            sys.exit(f"{path} answered {response.status_code}: {response.text[:500]}")
    return seconds


def summary(seconds: list[float]) -> dict[str, float]:
    ms = sorted(s * 1000 for s in seconds)
    return {
        "requests": len(ms),
        "requests_per_s": len(ms) / (sum(ms) / 1000),
        "p50_ms": statistics.median(ms),
        "p99_ms": ms[min(len(ms) - 1, int(0.99 * len(ms)))],
        "max_ms": ms[-1],
    }
