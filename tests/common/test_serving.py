"""The shared serving app (labs/common/serving): exact scores, readable 4xx, metrics, the log."""

from __future__ import annotations

import asyncio
import json
import math
import sqlite3
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from labs.common.data import (
    CATEGORICAL_FEATURES,
    CATEGORIES,
    FEATURES,
    NUMERIC_RANGES,
    make_churn_data,
)
from labs.common.model import TrainParams, train_model
from labs.common.serving.app import create_app
from labs.common.serving.metrics import parse_metrics
from labs.common.serving.predlog import (
    PredictionLog,
    log_counts,
    read_predictions,
    read_rejections,
)
from labs.common.serving.schema import MAX_BATCH_ROWS
from labs.common.serving.scoring import LoadedModel, ModelLoadError, build_scorer, load_model

JSON = {"content-type": "application/json"}


def rows_of(n: int, seed: int = 3) -> list[dict[str, Any]]:
    frame = make_churn_data(n, seed=seed)[list(FEATURES)]
    return frame.astype({c: str for c in CATEGORICAL_FEATURES}).to_dict("records")


@pytest.fixture(scope="module")
def model() -> Any:
    return train_model(make_churn_data(1500, seed=2), TrainParams())


@pytest.fixture(scope="module")
def loaded(model: Any) -> LoadedModel:
    scorer, kind = build_scorer(model)
    return LoadedModel(model, "models:/test@champion", "test", "7", scorer, kind)


class AppClient:
    """A synchronous client that calls the ASGI app in-process on one event loop (~0.7 ms a
    request, against ~3 ms through starlette's threaded TestClient): the fuzz test sends
    thousands. App exceptions propagate, so a would-be 500 fails the test loudly."""

    def __init__(self, app: Any, lifespan: bool = True) -> None:
        self.app, self.lifespan = app, lifespan

    def __enter__(self) -> AppClient:
        import httpx

        self.loop = asyncio.new_event_loop()
        self._life = self.app.router.lifespan_context(self.app) if self.lifespan else None
        try:
            if self._life is not None:
                self.loop.run_until_complete(self._life.__aenter__())
        except BaseException:
            self.loop.close()
            raise
        transport = httpx.ASGITransport(app=self.app)
        self.http = httpx.AsyncClient(transport=transport, base_url="http://testserver")
        return self

    def __exit__(self, *exc: object) -> None:
        self.loop.run_until_complete(self.http.aclose())
        if self._life is not None:
            self.loop.run_until_complete(self._life.__aexit__(None, None, None))
        self.loop.close()

    def get(self, url: str) -> Any:
        return self.loop.run_until_complete(self.http.get(url))

    def post(self, url: str, **kwargs: Any) -> Any:
        return self.loop.run_until_complete(self.http.post(url, **kwargs))


@pytest.fixture()
def log_path(tmp_path: Path) -> Path:
    return tmp_path / "predictions.sqlite"


@pytest.fixture()
def client(loaded: LoadedModel, log_path: Path) -> Iterator[Any]:
    with AppClient(create_app(loaded.uri, log_path, loaded=loaded)) as c:
        yield c


def metric(client: Any, name: str, **labels: str) -> float:
    samples = parse_metrics(client.get("/metrics").text).get(name, [])
    return sum(v for lab, v in samples if all(lab.get(k) == x for k, x in labels.items()))


# --- scoring ---------------------------------------------------------------------------------


def test_predict_scores_exactly_like_the_model_and_logs_the_request(
    client, log_path, model
) -> None:
    rows = rows_of(25)
    response = client.post("/predict", json={"rows": rows, "request_id": "req-1"})
    assert response.status_code == 200
    body = response.json()
    assert body["request_id"] == "req-1" and body["model_version"] == "7"
    expected = model.predict_proba(make_churn_data(25, seed=3)[list(FEATURES)])[:, 1]
    assert np.allclose(body["churn_probability"], expected, rtol=0, atol=1e-9)
    assert body["churn"] == [int(p >= 0.5) for p in body["churn_probability"]]
    logged = read_predictions(log_path)
    assert len(logged) == 25 and set(logged["request_id"]) == {"req-1"}
    assert logged["row_index"].tolist() == list(range(25))
    assert logged["model_version"].unique().tolist() == ["7"]
    assert logged["churn_probability"].tolist() == body["churn_probability"]
    assert logged["tenure_months"].tolist() == [r["tenure_months"] for r in rows]
    assert metric(client, "churn_predictions_total") == 25
    assert metric(client, "churn_predictions_total", **{"class": "churn"}) == sum(body["churn"])


def test_compiled_scorer_equals_sklearn_and_other_models_fall_back(model) -> None:
    from labs.common.serving.schema import CustomerRow
    from labs.common.serving.scoring import rows_frame as _frame

    rows = [CustomerRow(**r) for r in rows_of(2000, seed=9)]
    scorer, kind = build_scorer(model)
    assert kind == "compiled-linear"
    gap = np.max(np.abs(scorer(rows) - model.predict_proba(_frame(rows))[:, 1]))
    assert gap < 1e-12
    forest = train_model(make_churn_data(400, seed=1), TrainParams("random_forest", n_estimators=5))
    scorer, kind = build_scorer(forest)
    assert kind == "sklearn"
    assert np.array_equal(scorer(rows[:50]), forest.predict_proba(_frame(rows[:50]))[:, 1])


# --- bad input ------------------------------------------------------------------------------


def _one(change: dict[str, Any] | None = None, drop: str | None = None) -> dict[str, Any]:
    row = {**rows_of(1)[0], **(change or {})}
    row.pop(drop, None)
    return {"rows": [row]}


@pytest.mark.parametrize(
    ("body", "reason", "where"),
    [
        (_one({"age": 540}), "less_than_equal", "rows[0].age"),
        (_one({"tenure_months": -1}), "greater_than_equal", "rows[0].tenure_months"),
        (_one({"monthly_charges": "70.5"}), "float_type", "rows[0].monthly_charges"),
        (_one({"support_calls": 2.5}), "int_type", "rows[0].support_calls"),
        (_one({"age": True}), "int_type", "rows[0].age"),
        (_one(drop="contract"), "missing", "rows[0].contract"),
        (_one({"contract": "monthly"}), "literal_error", "rows[0].contract"),
        (_one({"email": "a@b.example"}), "extra_forbidden", "rows[0].email"),
        ({"rows": []}, "too_short", "rows"),
        ({"rows": rows_of(1) * (MAX_BATCH_ROWS + 1)}, "too_long", "rows"),
        ({"rows": rows_of(1), "request_id": "no spaces allowed"}, "string_pattern_mismatch", ""),
        ([1, 2, 3], "model_type", "body"),
    ],
)
def test_bad_input_is_a_readable_422_counted_by_reason(
    client, log_path, body, reason, where
) -> None:
    response = client.post("/predict", json=body)
    assert response.status_code == 422
    payload = response.json()
    assert reason in {d["type"] for d in payload["detail"]}
    assert payload["message"].startswith("invalid request") and where in payload["message"]
    assert metric(client, "churn_validation_failures_total", reason=reason) == 1
    assert metric(client, "churn_request_errors_total", endpoint="/predict", status="422") == 1
    assert log_counts(log_path) == (0, 0)


@pytest.mark.parametrize(
    ("content", "reason"),
    [
        (b'{"rows": [', "json_invalid"),
        (b"[" * 100_000, "json_invalid"),  # nesting bomb: pydantic's parser has a depth limit
        (b'{"rows": [{"monthly_charges": NaN}]}', "finite_number"),
        ("é".encode("latin-1"), "json_invalid"),
        (b"", "json_invalid"),
    ],
)
def test_unparseable_bodies_are_422_not_500(client, content, reason) -> None:
    response = client.post("/predict", content=content, headers=JSON)
    assert response.status_code == 422
    assert reason in {d["type"] for d in response.json()["detail"]}


def test_oversized_body_is_413_and_duplicate_request_id_is_409(client, log_path) -> None:
    assert client.post("/predict", content=b" " * 1_000_001, headers=JSON).status_code == 413
    assert metric(client, "churn_validation_failures_total", reason="body_too_large") == 1
    body = {"rows": rows_of(3), "request_id": "once"}
    assert client.post("/predict", json=body).status_code == 200
    again = client.post("/predict", json=body)
    assert again.status_code == 409 and "already logged" in again.json()["detail"]
    assert log_counts(log_path) == (1, 3)


def _invalid_value(name: str) -> st.SearchStrategy[Any]:
    """Values certainly invalid for feature ``name`` (wrong type, out of range, or unknown)."""
    junk = st.one_of(
        st.none(), st.booleans(), st.text(max_size=8), st.lists(st.integers(), max_size=2)
    )
    if name in CATEGORIES:
        unknown = junk.filter(lambda v: not isinstance(v, str) or v not in CATEGORIES[name])
        return st.one_of(unknown, st.integers())
    low, high = NUMERIC_RANGES[name]
    out_of_range = st.one_of(
        st.integers(max_value=int(low) - 1), st.integers(min_value=int(high) + 1)
    )
    if name == "monthly_charges":
        return st.one_of(junk, out_of_range, st.floats(min_value=high, exclude_min=True))
    return st.one_of(junk, out_of_range, st.floats().filter(lambda f: not f.is_integer()))


def _mutated_body() -> st.SearchStrategy[Any]:
    """A valid batch with one thing broken: a bad value, a missing or an extra field."""
    base = rows_of(3, seed=11)
    bad_value = st.sampled_from(FEATURES).flatmap(
        lambda f: _invalid_value(f).map(lambda v, f=f: {**base[0], f: v})
    )
    missing = st.sampled_from(FEATURES).map(lambda f: {k: v for k, v in base[0].items() if k != f})
    extra = (
        st.text(min_size=1, max_size=10)
        .filter(lambda k: k not in FEATURES)
        .map(lambda k: {**base[0], k: 1})
    )
    row = st.one_of(bad_value, missing, extra)
    return st.tuples(row, st.integers(0, 2)).map(
        lambda t: {"rows": [*base[: t[1]], t[0], *base[t[1] :]]}
    )


_json = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=10),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4)
    ),
    max_leaves=12,
)


def test_fuzz_1000_malformed_bodies_never_5xx_and_server_stays_healthy(client, log_path) -> None:
    statuses: list[int] = []

    @settings(
        max_examples=1000,
        deadline=None,
        database=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    )
    @given(st.one_of(_mutated_body(), _json, _json.map(lambda v: {"rows": v})))
    def post_malformed(body: Any) -> None:
        response = client.post("/predict", content=json.dumps(body).encode(), headers=JSON)
        statuses.append(response.status_code)
        assert response.status_code == 422, (body, response.text)
        assert response.json()["message"].startswith("invalid request")

    post_malformed()
    assert len(statuses) >= 1000
    assert client.get("/health").status_code == 200
    assert client.get("/ready").status_code == 200
    assert client.post("/predict", json={"rows": rows_of(2)}).status_code == 200
    assert log_counts(log_path) == (1, 2)  # no malformed body was scored or logged
    assert metric(client, "churn_request_errors_total", endpoint="/predict", status="422") == len(
        statuses
    )
    assert not any(
        int(lab["status"]) >= 500
        for lab, v in parse_metrics(client.get("/metrics").text)["churn_requests_total"]
        if v > 0
    )


def test_json_schema_integers_strict_json_and_content_type(client, log_path) -> None:
    row = rows_of(1)[0]
    # JSON Schema's integer: 47.0 is one; 47.5, "47" and true are not
    ok = client.post("/predict", json={"rows": [{**row, "age": 47.0}]})
    assert ok.status_code == 200 and ok.json()["logged"] == "written"
    for bad, reason in ((47.5, "int_type"), ("47", "int_type"), (True, "int_type")):
        refused = client.post("/predict", json={"rows": [{**row, "age": bad}]})
        assert refused.status_code == 422 and reason in {
            d["type"] for d in refused.json()["detail"]
        }
    # duplicate keys are ambiguous (parsers keep the first or the last): refused
    dup = json.dumps({"rows": [row]})[:-1] + ', "rows": []}'
    refused = client.post("/predict", content=dup.encode(), headers=JSON)
    assert refused.status_code == 422 and refused.json()["detail"][0]["type"] == "duplicate_key"
    # only application/json, on both POST endpoints
    plain = {"content-type": "text/plain"}
    body = json.dumps({"rows": [row]}).encode()
    assert client.post("/predict", content=body, headers=plain).status_code == 415
    assert client.post("/predict", content=body).status_code == 415  # no content type at all
    charset = {"content-type": "application/json; charset=utf-8"}
    assert client.post("/predict", content=body, headers=charset).status_code == 200
    assert client.post("/monitoring", content=b'{"day": 1}', headers=plain).status_code == 415
    assert client.post("/monitoring", content=b" " * 300_000, headers=JSON).status_code == 413
    assert client.post("/monitoring", json={"day": "1"}).status_code == 422
    assert log_counts(log_path) == (2, 2)


def test_rejections_are_persisted_with_reason_status_and_size(loaded, log_path) -> None:
    row = rows_of(1)[0]
    with AppClient(create_app(loaded.uri, log_path, loaded=loaded)) as c:
        too_old = json.dumps({"rows": [{**row, "age": 540}]}).encode()
        assert c.post("/predict", content=too_old, headers=JSON).status_code == 422
        assert c.post("/predict", content=b" " * 1_000_001, headers=JSON).status_code == 413
        assert (
            c.post("/predict", content=b"{}", headers={"content-type": "text/csv"}).status_code
            == 415
        )
        assert c.post("/monitoring", json={"day": -1}).status_code == 422
        assert c.post("/predict", json={"rows": [row]}).status_code == 200
    rejected = read_rejections(log_path)  # the app has stopped: its writer drained the queue
    assert rejected[["endpoint", "status", "reason"]].values.tolist() == [
        ["/predict", 422, "less_than_equal"],
        ["/predict", 413, "body_too_large"],
        ["/predict", 415, "unsupported_media_type"],
        ["/monitoring", 422, "greater_than_equal"],
    ]
    assert rejected["body_bytes"].tolist()[:3] == [len(too_old), 1_000_001, 2]
    assert rejected["ts"].is_monotonic_increasing and log_counts(log_path) == (1, 1)


def test_openapi_refs_resolve_and_every_status_is_documented(client) -> None:
    spec = client.get("/openapi.json").json()
    text = json.dumps(spec)
    assert "#/$defs/" not in text
    schemas = spec["components"]["schemas"]
    refs = {r.split("/")[-1] for r in _refs(spec)}
    assert refs and refs <= set(schemas)
    documented = {
        (path, method): set(op["responses"]) for path, ops in spec["paths"].items()
        for method, op in ops.items()
    }  # fmt: skip
    assert documented[("/predict", "post")] == {"200", "409", "413", "415", "422", "503"}
    assert documented[("/monitoring", "post")] == {"200", "413", "415", "422"}
    assert set(spec["paths"]["/metrics"]["get"]["responses"]["200"]["content"]) == {"text/plain"}


def _refs(node: Any) -> Iterator[str]:
    if isinstance(node, dict):
        for key, value in node.items():
            yield from [value] if key == "$ref" else _refs(value)
    elif isinstance(node, list):
        for value in node:
            yield from _refs(value)


# --- a locked prediction log ---------------------------------------------------------------


def _lock(path: Path) -> sqlite3.Connection:
    """Another connection holding the log's write lock (as a backup or a stuck shell would)."""
    conn = sqlite3.connect(path, timeout=5, isolation_level=None)
    conn.execute("BEGIN IMMEDIATE")
    return conn


def test_full_log_queue_answers_and_counts_the_drop(loaded, log_path) -> None:
    app = create_app(loaded.uri, log_path, loaded=loaded, log_wait=0.05, log_queue_size=1)
    with AppClient(app) as c:
        locker = _lock(log_path)
        try:
            # 1: the writer holds it, retrying; 2: waits in the queue (size 1); 3: no room
            answers = [
                c.post("/predict", json={"rows": rows_of(1), "request_id": f"r{i}"})
                for i in range(3)
            ]
            assert [a.status_code for a in answers] == [200, 200, 200]
            assert [a.json()["logged"] for a in answers] == ["pending", "pending", "dropped"]
            assert metric(c, "churn_prediction_log_dropped_total", reason="queue_full") == 1
            assert metric(c, "churn_prediction_log_pending_total") == 2
            assert metric(c, "churn_prediction_log_queue_depth") == 1
            assert c.get("/health").status_code == 200
        finally:
            locker.rollback()
            locker.close()
    assert sorted(read_predictions(log_path)["request_id"]) == ["r0", "r1"]  # drained at stop


def test_log_writer_retries_a_locked_log_and_counts_what_shutdown_leaves(tmp_path) -> None:
    from labs.common.serving.writer import LogClosedError, LogWriter

    path = tmp_path / "w.sqlite"
    writer = LogWriter(PredictionLog(path, busy_timeout=0.05), maxsize=2)
    row = tuple(rows_of(1)[0][f] for f in FEATURES)

    def append(request_id: str) -> Any:
        return lambda log: log.append(request_id, 0.0, "1", [row], [0.25], [0])

    locker = _lock(path)
    first = writer.submit(append("a"))
    time.sleep(0.3)  # six times the busy timeout: retried, not failed
    assert first is not None and not first.done()
    locker.rollback()
    locker.close()
    assert first.result(timeout=5) == 1
    locker = _lock(path)
    try:
        second = writer.submit(append("b"))
        assert second is not None
        assert writer.close(timeout=0.3) == 1  # still locked at the deadline: counted
    finally:
        locker.rollback()
        locker.close()
    assert isinstance(second.exception(), LogClosedError)
    assert writer.submit(append("c")) is None  # closed: refused at once, for the caller to count
    assert log_counts(path) == (1, 1)


@pytest.mark.integration
def test_locked_log_never_freezes_health_or_predict_on_a_live_server(registered, tmp_path) -> None:
    """Issue #11.7: with the log write-locked by another process, /health took 4.8 s, then 30 s
    (the write blocked the event loop). Now both answer, and the row lands after the lock."""
    import httpx

    from labs.common.serving.server import serve_in_background

    log_path = tmp_path / "predictions.sqlite"
    body = {"rows": rows_of(2), "request_id": "while-locked"}
    with serve_in_background(registered, log_path=log_path) as server:
        locker = _lock(log_path)
        try:
            with httpx.Client(base_url=server.url, timeout=5.0) as http:
                # /predict answers "pending" only once its log write has waited on the lock
                # (0.25 s): from then on the writer is blocked on it, retrying.
                answer = http.post("/predict", json=body)
                assert answer.status_code == 200 and answer.json()["logged"] == "pending"
                # While the write stays blocked, the server keeps answering; a frozen event loop
                # would run into the client's timeout instead (the bug took 4.8 s, then 30 s).
                try:
                    health = http.get("/health").status_code
                except httpx.TimeoutException:
                    health = None
                assert health == 200, "/health froze behind the blocked log write"
                # the writer holds the one write, retrying: nothing waits in the queue
                assert metric(http, "churn_prediction_log_queue_depth") == 0
            assert log_counts(log_path) == (0, 0)
        finally:
            locker.rollback()
            locker.close()
        deadline = time.monotonic() + 5
        while log_counts(log_path) != (1, 2) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert log_counts(log_path) == (1, 2)


# --- metrics, readiness, the monitoring push --------------------------------------------------


def test_metrics_have_the_expected_series_and_count_requests(client) -> None:
    for _ in range(3):
        assert client.post("/predict", json={"rows": rows_of(4)}).status_code == 200
    samples = parse_metrics(client.get("/metrics").text)
    assert metric(client, "churn_requests_total", endpoint="/predict", status="200") == 3
    assert metric(client, "churn_request_latency_seconds_count", endpoint="/predict") == 3
    assert (
        metric(client, "churn_request_latency_seconds_bucket", endpoint="/predict", le="+Inf") == 3
    )
    info = samples["churn_model_info"][0][0]
    assert info["version"] == "7" and info["scorer"] == "compiled-linear"
    assert samples["process_resident_memory_bytes"][0][1] > 1e6
    # not yet measured: NaN, not a misleading 0
    assert math.isnan(metric(client, "churn_drift_share"))
    assert metric(client, "churn_alerts_total", kind="quality") == 0


def test_monitoring_push_sets_gauges_and_counts_alerts(client) -> None:
    alert = {"kind": "quality", "day": 23, "metric": "roc_auc", "value": 0.51, "threshold": 0.7,
             "reason": "roc_auc 0.51 < 0.70"}  # fmt: skip
    update = {"day": 23, "drift_share": 0.29, "prediction_drift": True, "rolling_accuracy": 0.61,
              "rolling_roc_auc": 0.55, "alerts": [alert, {**alert, "kind": "drift"}]}  # fmt: skip
    assert client.post("/monitoring", json=update).status_code == 200
    assert metric(client, "churn_drift_share") == pytest.approx(0.29)
    assert metric(client, "churn_rolling_accuracy") == pytest.approx(0.61)
    assert metric(client, "churn_prediction_drift") == 1
    assert metric(client, "churn_monitoring_last_day") == 23
    assert metric(client, "churn_alerts_total", kind="quality") == 1
    assert client.get("/monitoring").json()["alerts"][0]["metric"] == "roc_auc"
    bad = client.post("/monitoring", json={**update, "drift_share": 3})
    assert bad.status_code == 422 and "drift_share" in bad.json()["message"]


def test_not_ready_until_started(loaded, tmp_path) -> None:
    app = create_app(loaded.uri, tmp_path / "p.sqlite", loaded=loaded)
    with AppClient(app, lifespan=False) as c:  # the start-up (model load, log open) never ran
        assert c.get("/health").status_code == 200
        assert c.get("/ready").status_code == 503
        assert c.post("/predict", json={"rows": rows_of(1)}).status_code == 503


def test_listens_before_its_model_loads_and_is_ready_only_after(loaded, tmp_path, monkeypatch):
    gate, asked = threading.Event(), []
    monkeypatch.setattr(
        "labs.common.serving.app.load_model", lambda uri: asked.append(uri) or loaded
    )
    app = create_app(loaded.uri, tmp_path / "p.sqlite", load_gate=gate.wait)
    with AppClient(app) as c:  # started: alive, not ready, and no load begun
        assert c.get("/health").status_code == 200
        assert c.get("/ready").status_code == 503
        assert c.post("/predict", json={"rows": rows_of(1)}).status_code == 503
        assert asked == []
        gate.set()  # the load may begin: /ready turns 200 once it is done
        deadline = time.monotonic() + 10
        while c.get("/ready").status_code != 200 and time.monotonic() < deadline:
            time.sleep(0.01)
        assert asked == [loaded.uri] and c.get("/ready").json()["ready"] is True
        assert c.post("/predict", json={"rows": rows_of(1)}).status_code == 200


def test_an_extra_ready_check_holds_readiness_not_serving(loaded, tmp_path) -> None:
    problem: list[str | None] = ["model store unreachable"]
    app = create_app(
        loaded.uri, tmp_path / "p.sqlite", loaded=loaded, ready_check=lambda: problem[0]
    )
    with AppClient(app) as c:
        answer = c.get("/ready")
        assert answer.status_code == 503 and answer.json()["detail"] == "model store unreachable"
        assert c.post("/predict", json={"rows": rows_of(1)}).status_code == 200  # it still could
        problem[0] = None
        assert c.get("/ready").status_code == 200


# --- the prediction log -------------------------------------------------------------------------


def test_prediction_log_loses_nothing_under_concurrent_writers(tmp_path) -> None:
    log = PredictionLog(tmp_path / "log.sqlite")
    row = tuple(rows_of(1)[0][f] for f in FEATURES)
    errors: list[BaseException] = []

    def writer(t: int) -> None:
        try:
            for i in range(40):
                log.append(f"t{t}-{i}", 0.0, "1", [row] * 3, [0.25] * 3, [0] * 3)
        except BaseException as err:  # surfaced below, not lost in the thread
            errors.append(err)

    threads = [threading.Thread(target=writer, args=(t,)) for t in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    log.close()
    assert not errors
    assert log_counts(tmp_path / "log.sqlite") == (320, 960)
    frame = read_predictions(tmp_path / "log.sqlite")
    assert list(frame["contract"].cat.categories) == list(CATEGORIES["contract"])
    with sqlite3.connect(tmp_path / "log.sqlite") as conn:
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


# --- loading from the registry, and failing clearly -----------------------------------------------


@pytest.fixture(scope="module")
def registered(model: Any, tmp_path_factory: pytest.TempPathFactory) -> str:
    import mlflow

    from labs.common.registration import register_version
    from labs.common.registry import promote

    client = mlflow.MlflowClient()
    name = "monitoring-app-test"
    version, _ = register_version(client, name, model, experiment="test-monitoring-app")
    promote(
        client, name, version, reason="test", audit_log=tmp_path_factory.mktemp("a") / "a.jsonl"
    )
    return f"models:/{name}@champion"


def test_loads_the_champion_by_alias_and_pins_its_version(registered, model) -> None:
    loaded = load_model(registered)
    assert (loaded.name, loaded.version, loaded.scorer_kind) == (
        "monitoring-app-test", "1", "compiled-linear",
    )  # fmt: skip
    x = make_churn_data(50, seed=4)[list(FEATURES)]
    assert np.array_equal(loaded.model.predict_proba(x), model.predict_proba(x))


@pytest.mark.parametrize(
    "uri", ["models:/no-such-model@champion", "models:/monitoring-app-test@nope"]
)
def test_bad_model_uri_is_a_clear_startup_error(registered, uri, tmp_path, capsys) -> None:
    app = create_app(uri, tmp_path / "p.sqlite")
    with pytest.raises(ModelLoadError, match=r"cannot load model .* from tracking store"):
        with AppClient(app):
            pass
    from labs.common.serving.server import main

    assert main(["--model-uri", uri, "--port", "1"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("serve: error: cannot load model") and uri in err
    assert "Traceback" not in err


@pytest.mark.integration
def test_background_server_with_bad_uri_fails_fast_with_its_message(tmp_path) -> None:
    from labs.common.processes import ProcessStartError
    from labs.common.serving.server import serve_in_background

    with pytest.raises(ProcessStartError, match=r"exited with code 2[\s\S]*cannot load model"):
        with serve_in_background("models:/no-such-model@champion", log_path=tmp_path / "p.sqlite"):
            pass


# --- the OpenAPI contract, fuzzed against a live server -------------------------------------


@pytest.mark.integration
def test_schemathesis_finds_no_5xx_and_no_schema_violation(registered, tmp_path) -> None:
    """Issue #11.8: every operation of /openapi.json, positive and negative cases with a fixed
    seed, against the real server: no 5xx, every status documented, every body matching its
    schema and media type."""
    import requests
    import schemathesis
    from hypothesis import seed
    from schemathesis import GenerationMode
    from schemathesis.checks import not_a_server_error
    from schemathesis.specs.openapi.checks import (
        content_type_conformance,
        negative_data_rejection,
        positive_data_acceptance,
        response_schema_conformance,
        status_code_conformance,
    )

    from labs.common.serving.server import serve_in_background

    checks = [
        not_a_server_error,
        status_code_conformance,
        content_type_conformance,
        response_schema_conformance,
        # and the schema says exactly what the server accepts: valid bodies are not refused
        # (47.0 for an integer was), invalid ones are not accepted ("42" for an integer)
        negative_data_rejection,
        positive_data_acceptance,
    ]
    statuses: list[tuple[str, int]] = []
    with serve_in_background(registered, log_path=tmp_path / "p.sqlite") as server:
        schema = schemathesis.openapi.from_url(f"{server.url}/openapi.json")
        operations = [result.ok() for result in schema.get_all_operations()]
        assert {op.label for op in operations} == {
            "GET /health", "GET /ready", "GET /metrics", "POST /predict", "POST /monitoring",
            "GET /monitoring",
        }  # fmt: skip
        with requests.Session() as session:
            for op in operations:
                # a GET without parameters has one possible request and no invalid one
                post = op.method.upper() == "POST"
                modes = [GenerationMode.POSITIVE, GenerationMode.NEGATIVE] if post else []
                for mode in modes or [GenerationMode.POSITIVE]:
                    examples = 150 if post else 1

                    @seed(20261201)
                    @settings(
                        max_examples=examples,
                        deadline=None,
                        database=None,
                        suppress_health_check=list(HealthCheck),
                    )
                    @given(op.as_strategy(generation_mode=mode))
                    def call(case: Any) -> None:
                        response = case.call_and_validate(session=session, checks=checks)
                        statuses.append((case.operation.label, response.status_code))

                    call()
    by_operation: dict[str, set[int]] = {}
    for label, status in statuses:
        by_operation.setdefault(label, set()).add(status)
    assert len(statuses) >= 500  # 150 positive + 150 negative per POST (604 with this seed)
    assert not any(status >= 500 for _, status in statuses)
    assert 200 in by_operation["POST /predict"] and 422 in by_operation["POST /predict"]
