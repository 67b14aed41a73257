"""Edge vs cloud, measured at the client: one prediction scored on the device against the same
prediction asked of the serving app through a network that Envoy slows by a round trip.

The "cloud" is the project's serving app behind Envoy, whose fault filter delays every request
by ``cloud_rtt_ms`` (:attr:`labs.common.proxy.ProxySpec.delay_ms`): the client times the whole
request, so the network's cost is observed, not added on paper. The "device" is whatever
:func:`on_device` (or a replacement passed to the lab) returns for a model: a function that
scores one customer record.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from labs.common.data import FEATURES
from labs.scaling import throughput

if TYPE_CHECKING:
    from labs.common.proxy import Proxy

FAULT_STATS = "http.ingress.fault."  # Envoy's fault filter counters (listener stat prefix)
EdgeDevice = Callable[[Any, str], Callable[[dict[str, Any]], Any]]


def on_device(model: Any, cloud_url: str) -> Callable[[dict[str, Any]], Any]:
    """The device's scorer: validate and score one record in-process, as the server does but
    without HTTP; it never calls the cloud (``cloud_url`` is unused on purpose)."""
    from labs.common.serving.schema import CustomerRow
    from labs.common.serving.scoring import build_scorer

    scorer, _ = build_scorer(model)

    def predict(record: dict[str, Any]) -> Any:
        return scorer([CustomerRow.model_validate(record)])

    return predict


def first_record(frame: pd.DataFrame) -> dict[str, Any]:
    """The first customer of ``frame`` as plain JSON-able values."""
    row = frame[list(FEATURES)].iloc[0].to_dict()
    return {k: v.item() if hasattr(v, "item") else v for k, v in row.items()}


def time_device(predict: Callable[[dict[str, Any]], Any], record: dict[str, Any],
                seconds: float, max_calls: int = 200) -> tuple[float, int]:  # fmt: skip
    """Median ms of one device prediction over at least 5 calls or ``seconds``; calls made."""
    predict(record)  # warm
    times: list[float] = []
    start = time.perf_counter()
    while len(times) < 5 or (time.perf_counter() - start < seconds and len(times) < max_calls):
        t = time.perf_counter()
        predict(record)
        times.append(time.perf_counter() - t)
    return float(np.median(times) * 1e3), len(times)


def measure_edge(
    device: EdgeDevice,
    model: Any,
    frame: pd.DataFrame,
    proxy: Proxy,
    loopback_ms: float,
    *,
    rtt_ms: float,
    seconds: float,
) -> dict[str, float]:
    """Device latency vs the cloud's (one client, single-row requests through the slowed
    ``proxy``); ``loopback_ms`` is the same request straight to the app. Envoy's counter of
    injected delays shows that the cloud requests really crossed the slow network."""
    record = first_record(frame)
    edge_ms, calls = time_device(device(model, proxy.url), record, seconds)
    before = proxy.stats(FAULT_STATS).get(FAULT_STATS + "delays_injected", 0)
    cloud = throughput.load(proxy.url, throughput.rows_json(frame, 1), 1, clients=1,
                            seconds=seconds)  # fmt: skip
    delayed = proxy.stats(FAULT_STATS).get(FAULT_STATS + "delays_injected", 0) - before
    return {
        "edge_ms": edge_ms,
        "edge_calls": calls,
        "loopback_ms": loopback_ms,
        "injected_rtt_ms": rtt_ms,
        "cloud_ms": cloud["p50_ms"],
        "cloud_p95_ms": cloud["p95_ms"],
        "cloud_requests": cloud["requests"],
        "cloud_requests_delayed": delayed,  # includes the load's warm-up requests
        "cloud_error_share": cloud["error_share"],
        "network_ms": cloud["p50_ms"] - loopback_ms,  # what the client saw the network add
    }
