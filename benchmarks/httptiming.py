"""Timing HTTP requests for the serving benchmarks: sequential requests on one client, and
their throughput and percentiles."""

from __future__ import annotations

import statistics
import sys
import time


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
