"""The serving app: the champion behind ``POST /predict``, with Prometheus metrics and a
prediction log. Reusable by other labs: ``create_app(model_uri, log_path)``.

- ``POST /predict`` — a batch of customers, validated by a strict schema (``schema.py``:
  required columns, types, categories, ranges; extra fields refused). Bad input is a 422 with a
  readable message, never a 500; each failure is counted by reason.
- ``GET /health`` (the process is alive), ``GET /ready`` (model loaded, log open).
- ``GET /metrics`` — Prometheus text format, one registry per app (tests build many apps).
- ``POST /monitoring`` — the monitoring job pushes drift share, rolling quality and alerts here
  so they appear in ``/metrics`` beside the serving metrics. No authentication: the server
  binds 127.0.0.1, so only local processes can reach it.

Scoring (``scoring.py``) uses a numpy copy of the logistic regression when it reproduces the
model exactly; the metrics and their middleware live in ``metrics.py``.
"""

from __future__ import annotations

import logging
import sqlite3
import time
import uuid
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import numpy as np
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from pydantic import ValidationError

from labs.common.data import FEATURES
from labs.common.serving.metrics import Instrument, ServingMetrics
from labs.common.serving.predlog import DuplicateRequestError, PredictionLog
from labs.common.serving.schema import MAX_BATCH_ROWS, MonitoringUpdate, PredictRequest
from labs.common.serving.scoring import LoadedModel, load_model

logger = logging.getLogger("labs.common.serving.app")

MAX_BODY_BYTES = 1_000_000  # 1000 rows of JSON are ~200 kB; anything far bigger is not a batch
MAX_PROBLEMS_SHOWN = 20


class _ServingState:
    def __init__(self) -> None:
        self.loaded: LoadedModel | None = None
        self.log: PredictionLog | None = None
        self.monitoring: dict[str, Any] = {}


class _BodyTooLarge(Exception):
    pass


def create_app(
    model_uri: str,
    log_path: Path,
    *,
    loaded: LoadedModel | None = None,
    threshold: float = 0.5,
) -> FastAPI:
    """The serving app for ``model_uri`` (loaded at start-up unless ``loaded`` is given),
    logging every prediction to the SQLite file ``log_path``."""
    metrics = ServingMetrics()
    state = _ServingState()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        state.loaded = loaded or load_model(model_uri)
        state.log = PredictionLog(log_path)
        m = state.loaded
        metrics.model.info(
            {"name": m.name, "version": m.version, "uri": m.uri, "scorer": m.scorer_kind}
        )
        logger.info("serving %s (version %s, %s scorer)", m.uri, m.version, m.scorer_kind)
        try:
            yield
        finally:
            log, state.log, state.loaded = state.log, None, None
            log.close()

    app = FastAPI(
        title="Churn model",
        summary="Scores customers with the registered champion; logs every prediction.",
        lifespan=lifespan,
    )
    app.state.metrics = metrics
    app.state.serving = state
    app.add_middleware(Instrument, metrics=metrics)

    @app.exception_handler(RequestValidationError)
    async def invalid_request(request: Request, err: RequestValidationError) -> JSONResponse:
        return _unprocessable(err.errors(), prefix=())

    @app.exception_handler(Exception)
    async def unexpected(request: Request, err: Exception) -> JSONResponse:
        # Never a bare 500: the client learns it may retry, the log keeps the traceback.
        logger.exception("unexpected error on %s", request.url.path)
        return JSONResponse(
            {"detail": "the server could not handle this request; see the server log"}, 503
        )

    @app.get("/health")
    async def health() -> dict[str, str]:
        """The process is alive."""
        return {"status": "ok"}

    @app.get("/ready")
    async def ready() -> JSONResponse:
        """The model is loaded and the prediction log is open."""
        if state.loaded is None or state.log is None:
            return JSONResponse({"ready": False, "detail": "model not loaded"}, 503)
        return JSONResponse(
            {"ready": True, "model_uri": state.loaded.uri, "model_version": state.loaded.version}
        )

    @app.get("/metrics")
    async def prometheus_metrics() -> Response:
        """Every series in Prometheus text format."""
        return Response(generate_latest(metrics.registry), media_type=CONTENT_TYPE_LATEST)

    @app.post(
        "/predict",
        openapi_extra={
            "requestBody": {
                "required": True,
                "content": {"application/json": {"schema": PredictRequest.model_json_schema()}},
            }
        },
    )
    async def predict(request: Request) -> JSONResponse:
        """Score a batch: ``{"rows": [{...}, ...], "request_id": "optional"}``."""
        # async, with scoring and the log write on the event loop: each typically takes under
        # a millisecond, a thread hop would cost as much, and with one worker requests are
        # served one after another anyway (the log's single writer is never contended here).
        loaded_model, log = state.loaded, state.log
        if loaded_model is None or log is None:
            return JSONResponse({"detail": "model not loaded yet"}, 503)
        try:
            body = await _read_body(request, MAX_BODY_BYTES)
        except _BodyTooLarge:
            metrics.validation_failures.labels("body_too_large").inc()
            return JSONResponse(
                {"detail": f"request body larger than {MAX_BODY_BYTES} bytes; send smaller "
                 f"batches (at most {MAX_BATCH_ROWS} rows)"},
                413,
            )  # fmt: skip
        try:
            # pydantic-core parses the JSON itself: strict JSON (no NaN), bounded nesting
            batch = PredictRequest.model_validate_json(body)
        except ValidationError as err:
            errors = err.errors(include_url=False)
            for reason in sorted({e["type"] for e in errors}):
                metrics.validation_failures.labels(reason).inc()
            return _unprocessable(errors)

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
        try:
            log.append(
                request_id,
                time.time(),
                loaded_model.version,
                [tuple(getattr(r, f) for f in FEATURES) for r in batch.rows],
                proba.tolist(),
                labels.tolist(),
            )
        except DuplicateRequestError as err:
            return JSONResponse({"detail": f"{err}; use a new request_id"}, 409)
        except sqlite3.Error:
            # An unlogged prediction breaks the audit trail: refuse rather than serve silently.
            logger.exception("prediction log write failed")
            return JSONResponse({"detail": "prediction log unavailable; retry later"}, 503)
        churned = int(labels.sum())
        metrics.predictions.labels("churn").inc(churned)
        metrics.predictions.labels("no_churn").inc(len(labels) - churned)
        return JSONResponse(
            {
                "request_id": request_id,
                "model_version": loaded_model.version,
                "churn_probability": proba.tolist(),
                "churn": labels.tolist(),
            }
        )

    @app.post("/monitoring")
    async def monitoring_update(update: MonitoringUpdate) -> dict[str, Any]:
        """The monitoring job's gauges and alerts (local only: the server binds 127.0.0.1)."""
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
        return {"accepted": True, "alerts": len(update.alerts)}

    @app.get("/monitoring")
    async def monitoring_state() -> dict[str, Any]:
        """The last update the monitoring job pushed."""
        return state.monitoring

    return app


async def _read_body(request: Request, limit: int) -> bytes:
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        raise _BodyTooLarge
    chunks, size = [], 0
    async for chunk in request.stream():  # bounded: stops at the limit, even without a length
        size += len(chunk)
        if size > limit:
            raise _BodyTooLarge
        chunks.append(chunk)
    return b"".join(chunks)


def _unprocessable(errors: Sequence[Any], prefix: tuple[str, ...] = ("body",)) -> JSONResponse:
    """422 with FastAPI's ``{"detail": [...]}`` shape plus one readable sentence."""
    shown = [
        {"loc": [*prefix, *e.get("loc", ())], "msg": e.get("msg", ""), "type": e.get("type", "")}
        for e in errors[:MAX_PROBLEMS_SHOWN]
    ]
    parts = [f"{_where(e.get('loc', ()))}: {e.get('msg', '')}{_got(e)}" for e in errors[:5]]
    more = f" (and {len(errors) - 5} more)" if len(errors) > 5 else ""
    noun = "problem" if len(errors) == 1 else "problems"
    return JSONResponse(
        {
            "detail": shown,
            "message": f"invalid request, {len(errors)} {noun}: " + "; ".join(parts) + more,
        },
        422,
    )


def _where(loc: Sequence[Any]) -> str:
    text = ""
    for part in loc:
        if part == "body":
            continue
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text or "body"


def _got(error: Any) -> str:
    value = error.get("input")
    if isinstance(value, bool | int | float | str) and error.get("type") != "missing":
        shown = repr(value)
        return f" (got {shown[:40]}{'…' if len(shown) > 40 else ''})"
    return ""
