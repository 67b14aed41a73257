"""The monitoring lab's counterfactuals: a broken part of the serving path or of the daily job,
run through the lab's real server, replay and job (``python -m labs.monitoring --audit``).

The serving ones wrap the real app in the server process (``--app-hook``): each is a module-
level function that takes the FastAPI app and returns the ASGI app to serve. The job ones are
:class:`~labs.monitoring.monitor.Monitor` subclasses or a reference scorer handed to ``run()``.
"""

from __future__ import annotations

import itertools
import json
from collections.abc import Awaitable, Callable, MutableMapping
from concurrent.futures import Future
from typing import Any

import numpy as np
import pandas as pd

from labs.common.counterfactuals import Counterfactual, LabCounterfactuals
from labs.common.data import (
    CATEGORICAL_FEATURES,
    CATEGORIES,
    FEATURES,
    INTEGER_FEATURES,
    NUMERIC_RANGES,
    make_churn_data,
)
from labs.common.model import TrainParams, split_xy, train_model
from labs.monitoring.lab import run
from labs.monitoring.monitor import Alert, DayReport, Monitor
from labs.monitoring.params import MonitoringParams

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
ASGIApp = Callable[[Scope, Any, Any], Awaitable[None]]  # (scope, receive, send)


# --- the serving path ---------------------------------------------------------------------


def load_model_per_request(app: Any) -> ASGIApp:
    """Every ``POST /predict`` loads the model from the registry again (resolve the alias,
    download, verify, build the scorer) before scoring — on the event loop, as a handler that
    calls the loader would."""
    from labs.common.serving.scoring import load_model

    state = app.state.serving

    async def serve(scope: Scope, receive: Any, send: Any) -> None:
        if scope["type"] == "http" and scope["path"] == "/predict" and state.loaded is not None:
            state.loaded = load_model(state.loaded.uri)
        await app(scope, receive, send)

    return serve


def log_every_other_request(app: Any) -> ASGIApp:
    """To save disk, the prediction log keeps one write in two; the others are reported done
    without being written (the answer still says ``logged: written``)."""
    state = app.state.serving
    count = itertools.count()
    sampled: set[int] = set()

    def sample(writer: Any) -> None:
        real = writer.submit

        def submit(write: Any) -> Future[Any]:
            if next(count) % 2:
                skipped: Future[Any] = Future()
                skipped.set_result(None)
                return skipped
            return real(write)

        writer.submit = submit
        sampled.add(id(writer))

    async def serve(scope: Scope, receive: Any, send: Any) -> None:
        writer = state.writer
        if writer is not None and id(writer) not in sampled:
            sample(writer)
        await app(scope, receive, send)

    return serve


def clean_inputs(app: Any) -> ASGIApp:
    """A "robust" input layer in front of the schema: unknown fields dropped, numbers sent as
    strings parsed, values clipped into range, unknown or missing categories replaced by the
    most common one — so malformed rows are scored instead of refused."""

    async def serve(scope: Scope, receive: Any, send: Any) -> None:
        if scope["type"] != "http" or scope["path"] != "/predict":
            await app(scope, receive, send)
            return
        body, more = b"", True
        while more:
            message = await receive()
            body += message.get("body", b"")
            more = message.get("more_body", False)
        cleaned = clean_body(body)
        headers = [(k, v) for k, v in scope["headers"] if k.lower() != b"content-length"]
        headers.append((b"content-length", str(len(cleaned)).encode()))
        delivered = False

        async def replayed() -> Message:
            nonlocal delivered
            if delivered:
                return await receive()
            delivered = True
            return {"type": "http.request", "body": cleaned, "more_body": False}

        await app({**scope, "headers": headers}, replayed, send)

    return serve


def clean_body(body: bytes) -> bytes:
    """The body with each row coerced into the schema's shape where possible."""
    try:
        data = json.loads(body)
        rows = data["rows"]
    except (ValueError, KeyError, TypeError):
        return body
    data["rows"] = [_clean_row(row) if isinstance(row, dict) else row for row in rows]
    return json.dumps(data).encode()


def _clean_row(row: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for name in FEATURES:
        value = row.get(name)
        if name in CATEGORICAL_FEATURES:
            known = CATEGORIES[name]
            out[name] = value if value in known else max(known, key=known.__getitem__)
            continue
        low, high = NUMERIC_RANGES[name]
        try:
            number = min(max(float(value), low), high)
        except (TypeError, ValueError):
            number = (low + high) / 2
        out[name] = int(round(number)) if name in INTEGER_FEATURES else number
    return out


# --- the daily job --------------------------------------------------------------------------


def previous_model_scores(model: Any, batch: pd.DataFrame, params: MonitoringParams) -> np.ndarray:
    """The reference batch's scores as the *previous* model version gave them (a random forest
    trained on older data), not the served model's: the reference was never re-scored."""
    older = make_churn_data(params.train_rows, seed=params.seed + 500)
    previous = train_model(older, TrainParams(model_type="random_forest", max_depth=4, seed=1))
    return previous.predict_proba(split_xy(batch)[0])[:, 1]


class DriftWaitsForLabels(Monitor):
    """Drift is checked on the batch whose labels arrived today, with its quality: the early
    warning waits for the labels."""

    def measure_day(self, today: int, scored: pd.DataFrame) -> DayReport:
        report = super().measure_day(today, scored)
        late = today - self.rules.label_delay_days
        if late < 0:  # nothing labelled yet: no check
            report.drift_share, report.drifted_features = 0.0, []
            report.prediction_drift, report.prediction_p_value = False, 1.0
            return report
        drift = super().measure_day(late, scored)
        report.drift_share, report.drifted_features = drift.drift_share, drift.drifted_features
        report.prediction_drift = drift.prediction_drift
        report.prediction_p_value = drift.prediction_p_value
        return report


class QualityAlertOnDrift(Monitor):
    """A quality alert (and so a retraining request) whenever the inputs drift — drift taken
    for degradation — instead of when the labels show the model doing worse."""

    def alerts_for(self, report: DayReport) -> list[Alert]:
        alerts = self._drift_alerts(report)
        if not alerts:
            self._firing.discard("quality")
            return alerts
        reason = f"inputs drifted (share {report.drift_share:.2f}): the model must be degraded"
        threshold = self.rules.drift_share_alert
        quality = self._raise(
            "quality", report.day, report.day, "drift_share", report.drift_share, threshold, reason
        )
        return [*alerts, quality]


# --- the lab's counterfactuals --------------------------------------------------------------

COUNTERFACTUALS = LabCounterfactuals(
    "monitoring",
    "monitoring",
    MonitoringParams,
    run,
    (
        Counterfactual(
            "model-loaded-per-request",
            "the model is loaded from the registry in every request",
            ("latency_p99",),
            "POST /predict resolves the champion alias and loads the model file on each call "
            "instead of once at start-up: every request pays for a model load.",
            components={"serving_hook": load_model_per_request},
        ),
        Counterfactual(
            "sampled-prediction-log",
            "the prediction log keeps one request in two",
            ("no_request_lost", "metrics_exposed"),
            "To save disk the log writes every other request and reports the others written: "
            "answered, counted on /metrics, but missing from the log the monitoring job reads.",
            components={"serving_hook": log_every_other_request},
        ),
        Counterfactual(
            "lenient-input-cleaning",
            "malformed inputs are 'cleaned' and scored",
            ("bad_input_refused",),
            "A forgiving layer before the schema parses strings, clips ranges, drops unknown "
            "fields and fills unknown categories, so an upstream bug is scored, not refused.",
            components={"serving_hook": clean_inputs},
        ),
        Counterfactual(
            "stale-reference-scores",
            "the reference keeps the previous model's scores",
            ("quiet_days_quiet",),
            "The reference batch was scored by the model version before this one and never "
            "re-scored: the served model's scores 'drift' from it on every quiet day.",
            components={"score_reference": previous_model_scores},
        ),
        Counterfactual(
            "drift-waits-for-labels",
            "drift is checked on the labelled batch",
            ("drift_alert_on_time",),
            "The job checks drift on the batch whose labels arrived today, together with its "
            "quality: the label-free early warning comes as late as the labels.",
            components={"monitor_cls": DriftWaitsForLabels},
        ),
        Counterfactual(
            "quality-alert-on-drift",
            "drift raises a quality alert",
            ("drift_is_not_degradation", "quality_alert_on_time"),
            "The job raises a quality alert (and asks for retraining) whenever the inputs "
            "drift, instead of when the late labels show the model doing worse.",
            components={"monitor_cls": QualityAlertOnDrift},
        ),
    ),
    audit_params={
        "train_rows": 1500,
        "reference_rows": 1000,
        "days": 12,
        "rows_per_day": 200,
        "covariate_start_day": 4,
        "concept_start_day": 8,
        "label_delay_days": 2,
        "bad_input_day": 1,
        "quality_noise_days": 12,
        "registered_model": "churn-model-monitoring-audit",
    },
)
