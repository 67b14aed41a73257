"""The serving app: the champion behind ``POST /predict``, with Prometheus metrics and a
prediction log. Reusable by other labs: ``create_app(model_uri, log_path)``.

- ``POST /predict`` — a batch of customers, validated by a strict schema (``schema.py``:
  required columns, types, categories, ranges; extra fields refused). Bad input is a 422 with a
  readable message, never a 500; each failure is counted by reason. The answer's ``logged``
  says whether the request is in the prediction log: ``written`` (before this answer, as
  always while the log is healthy), ``pending`` (another process holds the log's write lock:
  the write is queued and lands when it frees), ``dropped`` (the write queue was full; counted
  in ``churn_prediction_log_dropped_total``). A request id already logged is a 409.
- ``GET /health`` (the process is alive; never touches the log), ``GET /ready`` (model loaded,
  log open, an optional ``ready_check`` passes); with ``load_gate`` the app listens before its
  model loads (``/health`` 200, ``/ready`` and ``/predict`` 503 until it is loaded).
- ``GET /metrics`` — Prometheus text format, one registry per app (tests build many apps).
- ``POST /monitoring`` — the monitoring job pushes drift share, rolling quality and alerts here
  so they appear in ``/metrics`` beside the serving metrics. No authentication: the server
  binds 127.0.0.1, so only local processes can reach it.

Every POST body must be ``application/json`` (else 415), at most a size limit (else 413), and
valid JSON without duplicate keys that matches the schema (else 422). Refusals (413, 415, 422)
are logged in the ``rejections`` table beside the predictions. Every status an endpoint can
answer is in the OpenAPI document (``/openapi.json``), whose schemas all resolve.

The log is written by one writer thread from a bounded queue (``writer.py``), never on the
event loop: a locked SQLite file once froze every endpoint for 30 s. Scoring (``scoring.py``)
uses a numpy copy of the logistic regression when it reproduces the model exactly; the
metrics and their middleware live in ``metrics.py``; bodies are read and refused in
``bodies.py``; the OpenAPI schemas come from ``openapi.py``.
"""

from __future__ import annotations

import asyncio
import json
import logging
import sqlite3
import threading
import time
import uuid
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import numpy as np
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, PlainTextResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from pydantic import BaseModel, ValidationError

from labs.common.data import FEATURES
from labs.common.serving.bodies import (
    BodyTooLarge,
    DuplicateKey,
    declared_length,
    no_duplicate_keys,
    read_body,
    unprocessable,
)
from labs.common.serving.metrics import Instrument, ServingMetrics
from labs.common.serving.openapi import PROBLEMS, components, json_content, ref
from labs.common.serving.predlog import DuplicateRequestError, PredictionLog
from labs.common.serving.schema import (
    MAX_BATCH_ROWS,
    MonitoringUpdate,
    PredictRequest,
)
from labs.common.serving.scoring import LoadedModel, load_model
from labs.common.serving.writer import LogClosedError, LogWriter, count_late_failure, wait_for_write

logger = logging.getLogger("labs.common.serving.app")

MAX_BODY_BYTES = 1_000_000  # 1000 rows of JSON are ~200 kB; anything far bigger is not a batch
MAX_MONITORING_BYTES = 200_000  # 100 alerts of ~700 bytes, with room to spare
# How long /predict waits for its log write before answering "pending": a healthy write takes
# well under a millisecond, so only a locked log (another process's transaction) or a machine
# too busy to run the writer thread reaches this. Well under a proxy's per-try timeout (1 s in
# the availability lab): a 1 s wait once outlasted it there and the client lost the answer.
LOG_WAIT_S = 0.25
LOG_QUEUE_SIZE = 1000  # writes waiting while the log is locked; beyond it, "dropped" (counted)
LOG_BUSY_TIMEOUT_S = 0.2  # one SQLite attempt's wait for the lock; the writer then backs off
LOG_DRAIN_S = 5.0  # at shutdown, how long to wait for a locked log to take the queued writes


class _ServingState:
    def __init__(self) -> None:
        self.loaded: LoadedModel | None = None
        self.writer: LogWriter | None = None
        self.monitoring: dict[str, Any] = {}
        self.load_error: str | None = None


def create_app(
    model_uri: str,
    log_path: Path,
    *,
    loaded: LoadedModel | None = None,
    threshold: float = 0.5,
    log_wait: float = LOG_WAIT_S,
    log_queue_size: int = LOG_QUEUE_SIZE,
    log_drain: float = LOG_DRAIN_S,
    load_gate: Callable[[], object] | None = None,
    ready_check: Callable[[], str | None] | None = None,
) -> FastAPI:
    """The serving app for ``model_uri`` (loaded at start-up unless ``loaded`` is given),
    logging every prediction to the SQLite file ``log_path`` through a writer thread: /predict
    waits up to ``log_wait`` s for its write, at most ``log_queue_size`` writes queue while the
    log is locked, and shutdown waits up to ``log_drain`` s for them.

    ``load_gate``: listen first, load the model in a thread once ``load_gate()`` returns.
    ``ready_check``: an extra readiness condition (off the loop); a string it returns is why
    ``/ready`` answers 503."""
    metrics = ServingMetrics()
    state = _ServingState()

    def serve(m: LoadedModel) -> None:
        state.loaded = m
        metrics.model.info(
            {"name": m.name, "version": m.version, "uri": m.uri, "scorer": m.scorer_kind}
        )
        logger.info("serving %s (version %s, %s scorer)", m.uri, m.version, m.scorer_kind)

    def load_after_gate() -> None:
        try:
            load_gate()  # type: ignore[misc]
            serve(load_model(model_uri))  # one assignment: /ready sees None or the model
        except Exception as err:  # alive, never ready; /ready says why
            logger.exception("model load failed")
            state.load_error = str(err)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        if load_gate is None:
            serve(loaded or load_model(model_uri))
        log = PredictionLog(log_path, busy_timeout=LOG_BUSY_TIMEOUT_S)
        state.writer = writer = LogWriter(log, maxsize=log_queue_size)
        metrics.log_queue_depth.set_function(writer.depth)
        if load_gate is not None:  # a daemon thread: a gate still waiting never blocks exit
            threading.Thread(target=load_after_gate, daemon=True).start()
        try:
            yield
        finally:
            state.writer, state.loaded = None, None
            # Drain off the loop: a locked log may take up to log_drain seconds to take it.
            lost = await asyncio.to_thread(writer.close, log_drain)
            if lost:
                logger.error("prediction log closed with %d writes unwritten (locked)", lost)

    app = FastAPI(
        title="Churn model",
        summary="Scores customers with the registered champion; logs every prediction.",
        lifespan=lifespan,
    )
    app.state.metrics = metrics
    app.state.serving = state
    app.add_middleware(Instrument, metrics=metrics)
    schemas = components()

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            schema = FastAPI.openapi(app)
            schema.setdefault("components", {}).setdefault("schemas", {}).update(schemas)
        return app.openapi_schema  # type: ignore[return-value]

    app.openapi = openapi  # type: ignore[method-assign]

    def record_rejection(endpoint: str, status: int, reason: str, size: int) -> None:
        """Queue a row in the rejections table; never waits (a full queue is counted)."""
        writer = state.writer
        ts = time.time()
        future = None
        if writer is not None:
            future = writer.submit(
                lambda log: log.append_rejection(ts, endpoint, status, reason, size)
            )
        if future is None:
            metrics.rejections_unlogged.inc()

    async def read_json(
        request: Request, model: type[BaseModel], limit: int, endpoint: str
    ) -> BaseModel | JSONResponse:
        """The body as ``model``, or the refusal to send (415, 413, 422), logged."""

        def refuse(status: int, reasons: Sequence[str], size: int) -> None:
            record_rejection(endpoint, status, ",".join(reasons), size)
            if endpoint == "/predict":
                for reason in reasons:
                    metrics.validation_failures.labels(reason).inc()

        media_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
        if media_type != "application/json":
            refuse(415, ["unsupported_media_type"], declared_length(request))
            return JSONResponse(
                {"detail": f"send the body as application/json, not {media_type or 'nothing'}"},
                415,
            )
        try:
            body = await read_body(request, limit)
        except BodyTooLarge:
            refuse(413, ["body_too_large"], declared_length(request))
            extra = f"; send smaller batches (at most {MAX_BATCH_ROWS} rows)"
            return JSONResponse(
                {"detail": f"request body larger than {limit} bytes"
                 + (extra if endpoint == "/predict" else "")},
                413,
            )  # fmt: skip
        try:
            # {"age": 30, "age": 70} is ambiguous (pydantic-core silently keeps the last): look
            # for duplicate keys first. A body json cannot parse is left to pydantic's message.
            json.loads(body, object_pairs_hook=no_duplicate_keys)
        except DuplicateKey as err:
            refuse(422, ["duplicate_key"], len(body))
            return unprocessable(
                [{"loc": (), "msg": str(err), "type": "duplicate_key"}], prefix=("body",)
            )
        except (ValueError, RecursionError):
            pass
        try:
            # pydantic-core parses the JSON itself: strict JSON (no NaN), bounded nesting
            parsed = model.model_validate_json(body)
        except ValidationError as err:
            errors = err.errors(include_url=False)
            refuse(422, sorted({e["type"] for e in errors}), len(body))
            return unprocessable(errors)
        return parsed

    @app.exception_handler(RequestValidationError)
    async def invalid_request(request: Request, err: RequestValidationError) -> JSONResponse:
        record_rejection(request.url.path, 422, "request_validation", 0)
        return unprocessable(err.errors(), prefix=())

    @app.exception_handler(Exception)
    async def unexpected(request: Request, err: Exception) -> JSONResponse:
        # Never a bare 500: the client learns it may retry, the log keeps the traceback.
        logger.exception("unexpected error on %s", request.url.path)
        return JSONResponse(
            {"detail": "the server could not handle this request; see the server log"}, 503
        )

    @app.get(
        "/health",
        response_model=None,
        responses={200: json_content("Health", "The process is alive.")},
    )
    async def health() -> JSONResponse:
        """The process is alive (answers even while the prediction log is locked)."""
        return JSONResponse({"status": "ok"})

    @app.get(
        "/ready",
        response_model=None,
        responses={
            200: json_content("Readiness", "The model is loaded and the log is open."),
            503: json_content("Readiness", "Not ready yet."),
        },
    )
    async def ready() -> JSONResponse:
        """The model is loaded and the prediction log is open."""
        if state.loaded is None or state.writer is None:
            detail = f"model load failed: {state.load_error}" if state.load_error else None
            return JSONResponse({"ready": False, "detail": detail or "model not loaded"}, 503)
        if ready_check is not None:
            problem = await asyncio.to_thread(ready_check)
            if problem:
                return JSONResponse({"ready": False, "detail": problem}, 503)
        return JSONResponse(
            {"ready": True, "model_uri": state.loaded.uri, "model_version": state.loaded.version}
        )

    @app.get(
        "/metrics",
        response_class=PlainTextResponse,
        responses={
            200: {
                "description": "Every series in Prometheus text exposition format.",
                "content": {"text/plain": {"schema": {"type": "string"}}},
            }
        },
    )
    async def prometheus_metrics() -> Response:
        """Every series in Prometheus text format."""
        return Response(generate_latest(metrics.registry), media_type=CONTENT_TYPE_LATEST)

    @app.post(
        "/predict",
        response_model=None,
        openapi_extra={
            "requestBody": {
                "required": True,
                "content": {"application/json": {"schema": ref("PredictRequest")}},
            }
        },
        responses={200: json_content("PredictResponse", "The scored batch."), **PROBLEMS},
    )
    async def predict(request: Request) -> JSONResponse:
        """Score a batch: ``{"rows": [{...}, ...], "request_id": "optional"}``."""
        # async, with scoring on the event loop: it typically takes under a millisecond and a
        # thread hop would cost as much. The log write is the writer thread's (see writer.py).
        loaded_model, writer = state.loaded, state.writer
        if loaded_model is None or writer is None:
            return JSONResponse({"detail": "model not loaded yet"}, 503)
        batch = await read_json(request, PredictRequest, MAX_BODY_BYTES, "/predict")
        if isinstance(batch, JSONResponse):
            return batch
        assert isinstance(batch, PredictRequest)

        request_id = batch.request_id or uuid.uuid4().hex
        try:
            proba = np.asarray(loaded_model.scorer(batch.rows), dtype=float)
        except Exception:
            logger.exception("prediction failed for request %s", request_id)
            return JSONResponse({"detail": "the model failed on this batch; see server log"}, 503)
        if proba.shape != (len(batch.rows),) or not np.all(np.isfinite(proba)):
            logger.error("model returned %r for %d rows", proba.shape, len(batch.rows))
            return JSONResponse({"detail": "the model returned invalid scores"}, 503)
        labels = (proba >= threshold).astype(int)
        rows = [tuple(getattr(r, f) for f in FEATURES) for r in batch.rows]
        ts, version = time.time(), loaded_model.version
        p_list, y_list = proba.tolist(), labels.tolist()
        write = writer.submit(lambda log: log.append(request_id, ts, version, rows, p_list, y_list))
        logged = "written"
        if write is None:
            logged = "dropped"
            metrics.log_dropped.labels("queue_full").inc()
            logger.error("prediction log queue full: request %s answered unlogged", request_id)
        else:
            done = await wait_for_write(write, log_wait)
            if not done:
                logged = "pending"
                metrics.log_pending.inc()
                write.add_done_callback(count_late_failure(metrics.log_dropped, request_id))
            else:
                try:
                    write.result()
                except DuplicateRequestError as err:
                    return JSONResponse({"detail": f"{err}; use a new request_id"}, 409)
                except (sqlite3.Error, LogClosedError):
                    # An unlogged prediction breaks the audit trail: refuse, don't serve silently.
                    logger.exception("prediction log write failed")
                    return JSONResponse({"detail": "prediction log unavailable; retry later"}, 503)
        churned = int(labels.sum())
        metrics.predictions.labels("churn").inc(churned)
        metrics.predictions.labels("no_churn").inc(len(labels) - churned)
        return JSONResponse(
            {
                "request_id": request_id,
                "model_version": version,
                "churn_probability": p_list,
                "churn": y_list,
                "logged": logged,
            }
        )

    @app.post(
        "/monitoring",
        response_model=None,
        openapi_extra={
            "requestBody": {
                "required": True,
                "content": {"application/json": {"schema": ref("MonitoringUpdate")}},
            }
        },
        responses={
            200: json_content("MonitoringAccepted", "The gauges are set, alerts counted."),
            **{s: PROBLEMS[s] for s in (413, 415, 422)},
        },
    )
    async def monitoring_update(request: Request) -> JSONResponse:
        """The monitoring job's gauges and alerts (local only: the server binds 127.0.0.1)."""
        update = await read_json(request, MonitoringUpdate, MAX_MONITORING_BYTES, "/monitoring")
        if isinstance(update, JSONResponse):
            return update
        assert isinstance(update, MonitoringUpdate)
        metrics.monitored_day.set(update.day)
        for value, gauge in (
            (update.drift_share, metrics.drift_share),
            (update.prediction_drift, metrics.prediction_drift),
            (update.rolling_accuracy, metrics.rolling_accuracy),
            (update.rolling_roc_auc, metrics.rolling_roc_auc),
        ):
            if value is not None:
                gauge.set(float(value))
        for alert in update.alerts:
            metrics.alerts.labels(alert.kind).inc()
        state.monitoring = update.model_dump()
        return JSONResponse({"accepted": True, "alerts": len(update.alerts)})

    @app.get(
        "/monitoring",
        response_model=None,
        responses={200: json_content(None, "The last update pushed ({} before the first).")},
    )
    async def monitoring_state() -> JSONResponse:
        """The last update the monitoring job pushed."""
        return JSONResponse(state.monitoring)

    return app
