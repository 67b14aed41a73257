"""The serving app: the champion behind ``POST /predict``, with Prometheus metrics and a
prediction log. Reusable by other labs: ``create_app(model_uri, log_path)``.

- ``POST /predict`` — a batch of customers, validated by a strict schema (required columns,
  types, categories, ranges; extra fields refused). Bad input is a 422 with a readable
  message, never a 500; each failure is counted by reason.
- ``GET /health`` (the process is alive), ``GET /ready`` (model loaded, log open).
- ``GET /metrics`` — Prometheus text format, one registry per app (tests build many apps).
- ``POST /monitoring`` — the monitoring job pushes drift share, rolling quality and alerts here
  so they appear in ``/metrics`` beside the serving metrics. No authentication: the server
  binds 127.0.0.1, so only local processes can reach it.

Why a "compiled" scorer: scikit-learn validates its input on every call (~5 ms for one row on
this machine), which dwarfs the arithmetic of a logistic regression (microseconds). At
start-up we read the fitted pipeline's scaler, one-hot categories and coefficients into numpy,
check that it reproduces ``predict_proba`` on a probe grid (to 1e-9), and use it; any other
model, or a mismatch, falls back to scikit-learn. The model stays the registered one.
"""

from __future__ import annotations

import itertools
import logging
import math
import re
import sqlite3
import time
import uuid
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    Info,
    ProcessCollector,
    generate_latest,
)
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from labs.common.data import CATEGORICAL_FEATURES, CATEGORIES, FEATURES, NUMERIC_FEATURES
from labs.common.data import NUMERIC_RANGES as R
from labs.monitoring.predlog import DuplicateRequestError, PredictionLog

logger = logging.getLogger("labs.monitoring.app")

MAX_BATCH_ROWS = 1000
MAX_BODY_BYTES = 1_000_000  # 1000 rows of JSON are ~200 kB; anything far bigger is not a batch
MAX_PROBLEMS_SHOWN = 20
# Fine buckets below 10 ms: the latency goal lives there; default buckets start at 5 ms.
LATENCY_BUCKETS = (0.0005, 0.001, 0.002, 0.003, 0.005, 0.0075, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0)
ENDPOINTS = ("/predict", "/health", "/ready", "/metrics", "/monitoring")

Contract = Literal[tuple(CATEGORIES["contract"])]  # type: ignore[valid-type]
PaymentMethod = Literal[tuple(CATEGORIES["payment_method"])]  # type: ignore[valid-type]
InternetService = Literal[tuple(CATEGORIES["internet_service"])]  # type: ignore[valid-type]


class CustomerRow(BaseModel):
    """One customer to score: every feature required, typed, in range; nothing else allowed."""

    # strict: "42" is not 42 and 42.0 is not an int — a type confusion upstream is a bug to
    # surface, not to guess around (MLflow's signature check accepts numbers as strings).
    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)

    tenure_months: int = Field(ge=R["tenure_months"][0], le=R["tenure_months"][1])
    monthly_charges: float = Field(
        ge=R["monthly_charges"][0], le=R["monthly_charges"][1], allow_inf_nan=False
    )
    support_calls: int = Field(ge=R["support_calls"][0], le=R["support_calls"][1])
    age: int = Field(ge=R["age"][0], le=R["age"][1])
    contract: Contract
    payment_method: PaymentMethod
    internet_service: InternetService


class PredictRequest(BaseModel):
    """A batch of 1 … MAX_BATCH_ROWS customers and an optional client request id."""

    model_config = ConfigDict(extra="forbid", strict=True)

    rows: list[CustomerRow] = Field(min_length=1, max_length=MAX_BATCH_ROWS)
    request_id: str | None = Field(default=None, pattern=r"^[A-Za-z0-9._:-]{1,64}$")


class AlertEvent(BaseModel):
    """One alert as the monitoring job reports it."""

    model_config = ConfigDict(extra="forbid")

    kind: Literal["drift", "quality"]
    day: int = Field(ge=0)
    metric: str = Field(max_length=64)
    value: float
    threshold: float
    reason: str = Field(max_length=500)


class MonitoringUpdate(BaseModel):
    """What the monitoring job pushes after each day: gauges and that day's alerts."""

    model_config = ConfigDict(extra="forbid")

    day: int = Field(ge=0)
    drift_share: float | None = Field(default=None, ge=0, le=1)
    prediction_drift: bool | None = None
    rolling_accuracy: float | None = Field(default=None, ge=0, le=1)
    rolling_roc_auc: float | None = Field(default=None, ge=0, le=1)
    alerts: list[AlertEvent] = Field(default_factory=list, max_length=100)


class ModelLoadError(RuntimeError):
    """The model URI cannot be resolved or loaded; the server must not start without it."""


# --- the model ---------------------------------------------------------------------------

Scorer = Callable[[Sequence[CustomerRow]], np.ndarray]


@dataclass(frozen=True)
class LoadedModel:
    """A model ready to serve: the estimator, where it came from, and how it is scored."""

    model: Any
    uri: str
    name: str
    version: str
    scorer: Scorer
    scorer_kind: str  # "compiled-linear" | "sklearn"


def load_model(model_uri: str) -> LoadedModel:
    """Resolve ``model_uri`` (``models:/name@alias``, ``models:/name/3``, ``runs:/…``) and load
    it safely (skops, allowlisted types); a :class:`ModelLoadError` says what went wrong."""
    from labs.common.tracking import load_sklearn_model, tracking_uri

    try:
        name, version, pinned = _resolve_version(model_uri)
        # Load the resolved version, not the alias: the alias may move while we download.
        model = load_sklearn_model(pinned)
    except Exception as err:  # MLflow, skops and I/O errors all mean "cannot serve this"
        first_line = (str(err).strip().splitlines() or [""])[0][:300]
        raise ModelLoadError(
            f"cannot load model {model_uri!r} from tracking store {tracking_uri()}: "
            f"{type(err).__name__}: {first_line}"
        ) from err
    scorer, kind = build_scorer(model)
    return LoadedModel(model, model_uri, name, version, scorer, kind)


def warm_up() -> None:
    """Import what loading and scoring a model need (seconds), before the model is known."""
    import mlflow.artifacts  # noqa: F401
    import sklearn.compose  # noqa: F401
    import sklearn.ensemble  # noqa: F401
    import sklearn.linear_model  # noqa: F401
    import skops.io  # noqa: F401

    from labs.common.tracking import configure_tracking

    configure_tracking()


def _resolve_version(model_uri: str) -> tuple[str, str, str]:
    """(registered name, version, a URI pinned to that version)."""
    alias = re.fullmatch(r"models:/([^/@]+)@([^/@]+)", model_uri)
    numbered = re.fullmatch(r"models:/([^/@]+)/(\d+)", model_uri)
    if alias:
        import mlflow

        from labs.common.tracking import configure_tracking

        configure_tracking()
        found = mlflow.MlflowClient().get_model_version_by_alias(alias[1], alias[2])
        return alias[1], str(found.version), f"models:/{alias[1]}/{found.version}"
    if numbered:
        return numbered[1], numbered[2], model_uri
    return "", "unregistered", model_uri


def build_scorer(model: Any) -> tuple[Scorer, str]:
    """The fastest scorer that reproduces ``model.predict_proba`` exactly (see module doc)."""
    compiled = _compile_linear(model)
    if compiled is not None:
        probe = _probe_rows()
        expected = model.predict_proba(_frame(probe))[:, 1]
        gap = float(np.max(np.abs(compiled(probe) - expected)))
        if gap <= 1e-9:
            return compiled, "compiled-linear"
        logger.warning("compiled scorer differs from sklearn by %.3g; using sklearn", gap)
    return (lambda rows: model.predict_proba(_frame(rows))[:, 1]), "sklearn"


def _compile_linear(model: Any) -> Scorer | None:
    """numpy arithmetic for the churn pipeline (scaler + one-hot → logistic regression), or
    None if ``model`` is any other shape."""
    from sklearn.compose import ColumnTransformer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import OneHotEncoder, StandardScaler

    if not isinstance(model, Pipeline) or len(model.steps) != 2:
        return None
    pre, clf = model.steps[0][1], model.steps[1][1]
    if not isinstance(pre, ColumnTransformer) or not isinstance(clf, LogisticRegression):
        return None
    if list(clf.classes_) != [0, 1] or clf.coef_.shape[0] != 1:
        return None
    fitted = [(t, cols) for _, t, cols in pre.transformers_ if t != "drop"]
    if len(fitted) != 2:
        return None
    (scaler, num_cols), (encoder, cat_cols) = fitted
    if not (
        isinstance(scaler, StandardScaler)
        and isinstance(encoder, OneHotEncoder)
        and tuple(num_cols) == NUMERIC_FEATURES
        and tuple(cat_cols) == CATEGORICAL_FEATURES
        and encoder.drop is None
    ):
        return None
    n_num = len(NUMERIC_FEATURES)
    mean = scaler.mean_ if scaler.with_mean else np.zeros(n_num)
    scale = scaler.scale_ if scaler.with_std else np.ones(n_num)
    coef = clf.coef_[0]
    w_num, intercept = coef[:n_num], float(clf.intercept_[0])
    tables: list[dict[str, float]] = []
    start = n_num
    for categories in encoder.categories_:
        tables.append({str(c): float(coef[start + i]) for i, c in enumerate(categories)})
        start += len(categories)
    if start != len(coef):
        return None

    def score(rows: Sequence[CustomerRow]) -> np.ndarray:
        x = np.array([[getattr(r, f) for f in NUMERIC_FEATURES] for r in rows], dtype=float)
        z = ((x - mean) / scale) @ w_num
        for name, table in zip(CATEGORICAL_FEATURES, tables, strict=True):
            # a category unseen in training one-hot encodes to zeros (handle_unknown="ignore")
            z += np.array([table.get(getattr(r, name), 0.0) for r in rows])
        return 1.0 / (1.0 + np.exp(-(z + intercept)))

    return score


def _frame(rows: Sequence[CustomerRow]) -> Any:
    import pandas as pd

    return pd.DataFrame(
        {f: [getattr(r, f) for r in rows] for f in FEATURES}, columns=list(FEATURES)
    )


def _probe_rows() -> list[CustomerRow]:
    """Every category combination, with numbers from each range's ends and middle."""
    combos = itertools.product(*(CATEGORIES[c] for c in CATEGORICAL_FEATURES))
    rows = []
    for i, combo in enumerate(combos):
        values: dict[str, Any] = {}
        for j, name in enumerate(NUMERIC_FEATURES):
            low, high = R[name]
            value = low + (high - low) * (0.0, 0.1, 0.5, 1.0)[(i + j) % 4]
            values[name] = round(value, 2) if name == "monthly_charges" else int(value)
        rows.append(CustomerRow(**values, **dict(zip(CATEGORICAL_FEATURES, combo, strict=True))))
    return rows


# --- metrics -----------------------------------------------------------------------------


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
        for gauge in (
            self.drift_share,
            self.prediction_drift,
            self.rolling_accuracy,
            self.rolling_roc_auc,
            self.monitored_day,
        ):
            gauge.set(math.nan)


class _Instrument:
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


# --- the app -----------------------------------------------------------------------------


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
    app.add_middleware(_Instrument, metrics=metrics)

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
