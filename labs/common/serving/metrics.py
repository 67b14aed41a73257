"""The serving metrics: every series of one app in its own Prometheus registry, the ASGI
middleware that times and counts each request, and the readers of a scrape.

Prometheus naming: unit suffixes (``_seconds``), ``_total`` counters, labels for endpoint,
status, class, reason and kind.
"""

from __future__ import annotations

import math
import time
from collections.abc import Mapping
from typing import Any

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    Info,
    ProcessCollector,
)

# Fine buckets below 10 ms: the latency goal lives there; default buckets start at 5 ms.
LATENCY_BUCKETS = (0.0005, 0.001, 0.002, 0.003, 0.005, 0.0075, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0)
ENDPOINTS = ("/predict", "/health", "/ready", "/metrics", "/monitoring")
LOG_DROP_REASONS = ("queue_full", "duplicate", "write_error", "shutdown")

Samples = Mapping[str, list[tuple[dict[str, str], float]]]


class ServingMetrics:
    """Every series of one app, in its own registry (so tests can build many apps)."""

    def __init__(self) -> None:
        r = self.registry = CollectorRegistry()
        ProcessCollector(registry=r)  # resource use: CPU seconds, resident memory, open fds
        self.latency = Histogram(
            "churn_request_latency_seconds",
            "Time to answer a request, by endpoint.",
            ["endpoint"],
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        by_status = ["endpoint", "status"]
        self.requests = Counter(
            "churn_requests",
            "Requests answered, by endpoint and HTTP status.",
            by_status,
            registry=r,
        )
        self.errors = Counter(
            "churn_request_errors", "Requests answered with a 4xx or 5xx.", by_status, registry=r
        )
        self.predictions = Counter(
            "churn_predictions", "Rows scored, by predicted class.", ["class"], registry=r
        )
        self.validation_failures = Counter(
            "churn_validation_failures",
            "Rejected /predict bodies, by reason (the schema check that failed).",
            ["reason"],
            registry=r,
        )
        self.rejections_unlogged = Counter(
            "churn_rejections_unlogged",
            "Refused requests whose rejection row could not be queued for the log.",
            registry=r,
        )
        # The prediction log's writer (writer.py): a write that lands late or never is counted.
        self.log_pending = Counter(
            "churn_prediction_log_pending",
            "Predictions answered before their log write landed (the log was locked).",
            registry=r,
        )
        self.log_dropped = Counter(
            "churn_prediction_log_dropped",
            "Predictions answered but never logged, by reason (queue full, duplicate request "
            "id found after answering, write error, shut down while the log was locked).",
            ["reason"],
            registry=r,
        )
        self.log_queue_depth = Gauge(
            "churn_prediction_log_queue_depth",
            "Log writes waiting for the writer thread.",
            registry=r,
        )
        self.model = Info("churn_model", "The model being served.", registry=r)
        self.drift_share = Gauge(
            "churn_drift_share", "Share of features drifted on the last monitored day.", registry=r
        )
        self.prediction_drift = Gauge(
            "churn_prediction_drift", "1 if the prediction distribution drifted.", registry=r
        )
        self.rolling_accuracy = Gauge(
            "churn_rolling_accuracy", "Accuracy over the latest labelled days.", registry=r
        )
        self.rolling_roc_auc = Gauge(
            "churn_rolling_roc_auc", "ROC-AUC over the latest labelled days.", registry=r
        )
        self.monitored_day = Gauge(
            "churn_monitoring_last_day", "The last day the monitoring job checked.", registry=r
        )
        self.alerts = Counter(
            "churn_alerts", "Alerts raised by the monitoring job, by kind.", ["kind"], registry=r
        )
        # Series exist from the start (a dashboard shows 0, not "no data"); gauges not yet
        # measured are NaN, not a misleading 0.
        for cls in ("churn", "no_churn"):
            self.predictions.labels(cls)
        for kind in ("drift", "quality"):
            self.alerts.labels(kind)
        for reason in LOG_DROP_REASONS:
            self.log_dropped.labels(reason)
        for gauge in (
            self.drift_share,
            self.prediction_drift,
            self.rolling_accuracy,
            self.rolling_roc_auc,
            self.monitored_day,
        ):
            gauge.set(math.nan)


class Instrument:
    """Pure ASGI middleware (cheaper than BaseHTTPMiddleware): latency and status per request."""

    def __init__(self, app: Any, metrics: ServingMetrics) -> None:
        self.app, self.metrics = app, metrics

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()
        status = 503  # an exception escaping the app is answered 503 by the catch-all handler

        async def send_status(message: Any) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_status)
        finally:
            endpoint = scope["path"] if scope["path"] in ENDPOINTS else "other"
            self.metrics.latency.labels(endpoint).observe(time.perf_counter() - start)
            self.metrics.requests.labels(endpoint, str(status)).inc()
            if status >= 400:
                self.metrics.errors.labels(endpoint, str(status)).inc()


def parse_metrics(text: str) -> dict[str, list[tuple[dict[str, str], float]]]:
    """A Prometheus scrape as {sample name: [(labels, value), ...]}."""
    from prometheus_client.parser import text_string_to_metric_families

    out: dict[str, list[tuple[dict[str, str], float]]] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            out.setdefault(sample.name, []).append((dict(sample.labels), float(sample.value)))
    return out


def histogram_quantile(metrics: Samples, name: str, q: float, endpoint: str) -> float:
    """Upper bound of the bucket holding quantile ``q`` (Prometheus's histogram_quantile
    without interpolation)."""
    buckets = sorted(
        (float(lab["le"]), v)
        for lab, v in metrics.get(f"{name}_bucket", [])
        if lab.get("endpoint") == endpoint
    )
    if not buckets or buckets[-1][1] == 0:
        return math.nan
    total = buckets[-1][1]
    return next(le for le, count in buckets if count >= q * total)


def series(metrics: Samples, name: str, **labels: str) -> float:
    """The sum of ``name``'s samples whose labels match ``labels``."""
    return sum(
        v for lab, v in metrics.get(name, []) if all(lab.get(k) == x for k, x in labels.items())
    )
