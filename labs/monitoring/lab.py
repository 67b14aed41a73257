"""Monitoring a model in production: serve it, log it, watch it day by day, alert.

A churn model is trained, registered in MLflow and served over HTTP by the project's FastAPI
app (``labs.monitoring.app``), which validates every request, logs every prediction to SQLite
and exposes Prometheus metrics. Thirty simulated days of customers are then replayed through
the HTTP API by concurrent clients:

- days 0–9: customers like the training data (the quiet days: nothing may alert);
- from day 10: a **covariate shift** — prices rise, more month-to-month contracts;
- from day 20: **concept drift** on top — a share of customers churn for new reasons.

A daily monitoring job (``labs.monitoring.monitor``) reads the prediction log and checks each
day's batch for data and prediction drift with the drift lab's tests, and — three days later,
when the churn labels arrive — the model's accuracy, precision, recall and ROC-AUC. Threshold
breaches become alerts: written to an alert log, pushed to the server's ``/metrics``, and a new
quality incident asks for retraining.

What an interviewer wants to hear, measured here: serving metrics (latency, errors, traffic)
say whether the *service* is healthy; drift says the *inputs* changed, early and without
labels, but not whether the model got worse; only quality on (late) labels says that — so you
watch all three, with thresholds chosen so quiet days stay quiet.
"""

from __future__ import annotations

import math
import multiprocessing
import time
from collections.abc import Callable, Mapping
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from labs.common.catalogue import topic
from labs.common.data import (
    CATEGORICAL_FEATURES,
    DAY,
    FEATURES,
    TARGET,
    ScheduledEvent,
    make_churn_data,
    make_production_stream,
)
from labs.common.model import TrainParams, split_xy, train_model
from labs.common.results import Claim, LabResult, artifact_path, claim_metrics
from labs.common.tracking import RunRecord, dump_model, log_run_record, warm_up_tracking
from labs.monitoring.monitor import (
    QUALITY_METRICS,
    Alert,
    AlertRules,
    DayReport,
    MonitorJob,
    Reference,
    daily_table,
    join_outcomes,
    read_alerts,
    run_monitor_job,
    worst_day,
)
from labs.monitoring.predlog import LABEL, PROBA, log_counts, read_predictions, remove_log

QUESTION = topic("monitoring").question
EXPERIMENT = "lab-monitoring"

# Series a scrape of /metrics must show (Prometheus naming: unit suffixes, _total counters).
EXPECTED_SERIES = (
    "churn_request_latency_seconds_bucket",
    "churn_requests_total",
    "churn_request_errors_total",
    "churn_predictions_total",
    "churn_validation_failures_total",
    "churn_model_info",
    "churn_drift_share",
    "churn_prediction_drift",
    "churn_rolling_accuracy",
    "churn_alerts_total",
    "process_resident_memory_bytes",
    "process_cpu_seconds_total",
)

# Malformed requests an upstream bug might send on one quiet day: each must be a 422.
BAD_REQUESTS: tuple[tuple[str, Callable[[dict[str, Any]], dict[str, Any]]], ...] = (
    ("age in months, not years", lambda r: {"rows": [{**r, "age": r["age"] * 12}]}),
    ("price sent as a string", lambda r: {"rows": [{**r, "monthly_charges": "70.5"}]}),
    ("a column dropped", lambda r: {"rows": [{k: v for k, v in r.items() if k != "contract"}]}),
    ("an unknown category", lambda r: {"rows": [{**r, "contract": "monthly"}]}),
    ("an extra personal field", lambda r: {"rows": [{**r, "email": "a@b.example"}]}),
    ("an empty batch", lambda r: {"rows": []}),
)


@dataclass(frozen=True)
class MonitoringParams:
    """Parameters of the monitoring lab (``params.yaml`` → ``monitoring``)."""

    seed: int = 11
    train_rows: int = 3000
    reference_rows: int = 2000  # labelled, scored batch from the training distribution
    days: int = 30
    rows_per_day: int = 300
    rows_per_request: int = 20
    clients: int = 4  # concurrent HTTP clients replaying the traffic
    covariate_start_day: int = 10
    covariate_shift: Mapping[str, Any] = field(
        default_factory=lambda: {
            "monthly_charges": 12.0,
            "contract": {"month-to-month": 0.7, "one-year": 0.18, "two-year": 0.12},
        }
    )
    concept_start_day: int = 20
    concept_drift: float = 0.6
    label_delay_days: int = 3
    alpha: float = 0.01
    drift_share_alert: float = 0.25
    auc_drop_alert: float = 0.12
    accuracy_drop_alert: float = 0.15
    rolling_days: int = 3
    alert_within_days: int = 2
    latency_p99_slo_ms: float = 50.0
    bad_input_day: int = 5
    registered_model: str = "churn-model-monitoring-lab"

    def __post_init__(self) -> None:
        self.rules()  # validates the alert thresholds
        checks = {
            "train_rows": self.train_rows >= 100,
            "reference_rows": self.reference_rows >= 100,
            "rows_per_day": self.rows_per_day >= 50,
            "rows_per_request": 1 <= self.rows_per_request <= 1000,
            "clients": 1 <= self.clients <= 32,
            "covariate_start_day": self.covariate_start_day >= 1,
            "concept_start_day": self.concept_start_day > self.covariate_start_day,
            # the labels of the first concept-drift day must arrive inside the replay
            "days": self.days > self.concept_start_day + self.label_delay_days,
            "concept_drift": 0 < self.concept_drift <= 1,
            "alert_within_days": self.alert_within_days >= 0,
            "latency_p99_slo_ms": self.latency_p99_slo_ms > 0,
            "bad_input_day": 0 <= self.bad_input_day < self.days,
        }
        bad = [f"monitoring.{k}={getattr(self, k)!r}" for k, ok in checks.items() if not ok]
        if bad:
            raise ValueError(f"invalid monitoring parameters: {', '.join(bad)}")

    def rules(self) -> AlertRules:
        """The monitoring job's thresholds."""
        return AlertRules(
            alpha=self.alpha,
            drift_share_alert=self.drift_share_alert,
            auc_drop_alert=self.auc_drop_alert,
            accuracy_drop_alert=self.accuracy_drop_alert,
            label_delay_days=self.label_delay_days,
            rolling_days=self.rolling_days,
        )

    def events(self) -> list[ScheduledEvent]:
        """The production stream's schedule: covariate shift, then concept drift on top."""
        return [
            ScheduledEvent(self.covariate_start_day, covariate_shift=dict(self.covariate_shift)),
            ScheduledEvent(self.concept_start_day, concept_drift=self.concept_drift),
        ]


@dataclass(frozen=True)
class Sent:
    """One replayed request as the client saw it."""

    request_id: str
    day: int
    rows: int
    status: int
    seconds: float


def run(
    params: MonitoringParams,
    out_dir: Path,
    echo: Callable[[str], None] = lambda _: None,
    on_quality_alert: Callable[[Alert], None] | None = None,
) -> LabResult:
    """Serve, replay the stream, monitor it day by day; return the measured claims.

    ``on_quality_alert`` is called once per new quality incident (e.g. to start the retraining
    flow); the lab always records the request and reports it.
    """
    out_dir.mkdir(parents=True, exist_ok=True)
    log_path, alert_path = out_dir / "predictions.sqlite", out_dir / "alerts.jsonl"
    remove_log(log_path)
    alert_path.unlink(missing_ok=True)

    retrain_requests: list[Alert] = []

    def quality_hook(alert: Alert) -> None:
        retrain_requests.append(alert)
        if on_quality_alert is not None:
            on_quality_alert(alert)

    from labs.monitoring.server import serve_in_background

    # Three slow starts overlap: a sidecar process imports MLflow, opens the store and
    # registers the model (and logs the run at the end); the server imports its stack and
    # waits for the model's URI; this process trains and imports Evidently.
    sidecar = ProcessPoolExecutor(max_workers=1, mp_context=multiprocessing.get_context("spawn"))
    with (
        sidecar,
        serve_in_background(None, log_path=log_path, server_log=out_dir / "server.log") as server,
    ):
        sidecar.submit(warm_up_tracking)

        # The champion and "normal": a labelled, scored reference batch from training data.
        echo("Training the champion on reference data …")
        model = train_model(make_churn_data(params.train_rows, seed=params.seed), TrainParams())
        reference_batch = make_churn_data(params.reference_rows, seed=params.seed + 1)
        reference_batch[PROBA] = model.predict_proba(split_xy(reference_batch)[0])[:, 1]
        reference = Reference.from_scored(reference_batch)
        model_file = out_dir / "champion.skops"
        sha = dump_model(model, model_file)
        registered = sidecar.submit(
            register_champion, str(model_file), params.registered_model, sha
        )
        stream = make_production_stream(
            params.days, params.rows_per_day, seed=params.seed + 2, events=params.events()
        )
        # The files the monitoring job reads (the inputs of `python -m labs.monitoring.flow`
        # too): the reference batch, and the label feed, joined to the log by request and row.
        outcomes = pd.concat(
            [_outcomes(int(d), b, params.rows_per_request) for d, b in stream.groupby(DAY)],
            ignore_index=True,
        )
        reference_path, outcomes_path = out_dir / "reference.csv", out_dir / "outcomes.csv"
        reference_batch[[*FEATURES, TARGET, PROBA]].to_csv(reference_path, index=False)
        outcomes.to_csv(outcomes_path, index=False)
        import evidently.presets  # noqa: F401  (~8 s, while the others start)

        model_uri, version = registered.result()
        server.bind(model_uri)
        echo(f"Registered {model_uri} (version {version}); the server loads it …")
        server.wait_ready()
        echo(
            f"Server ready on {server.url}; {params.clients} clients replay {params.days} days "
            f"({len(stream)} customers) through POST /predict …"
        )
        # The traffic first, with nothing else running in this process: the latencies the
        # clients measure are the server's, not this process's own contention.
        sent, bad = _replay(params, stream, server.url)
        ok = sum(s.status == 200 for s in sent)
        echo(f"Replayed {len(sent)} requests ({ok} answered 200) + {len(bad)} malformed ones")

        # Then the daily job, day after day, as a nightly batch would: drift on the day's
        # batch, quality on the batch whose labels just arrived, gauges pushed to /metrics.
        echo("Monitoring, day by day (drift: the day's batch; quality: labels arrived today)")
        job = MonitorJob(
            prediction_log=log_path,
            outcomes=outcomes_path,
            reference=reference_path,
            alert_log=alert_path,
            rules=params.rules(),
            server_url=server.url,
        )
        reports = run_monitor_job(
            job, on_day=lambda r: echo(_format_report(r)), on_quality_alert=quality_hook
        )
        import httpx

        scrape = httpx.get(f"{server.url}/metrics", timeout=10).text
        server.stop()
        logged_requests, logged_rows = log_counts(log_path)

        echo("Evidently report of the worst day …")
        alerts = read_alerts(alert_path)
        table = daily_table(reports).merge(_latency_by_day(sent), on="day", how="left")
        table.to_csv(out_dir / "daily.csv", index=False)
        html = _worst_day_report(params, reference, log_path, outcomes, worst_day(reports), out_dir)
        dashboard = _plot_dashboard(params, table, alerts, reference, out_dir / "dashboard.png")
        claims = make_claims(
            params,
            reference=reference,
            sent=sent,
            bad=bad,
            logged=(logged_requests, logged_rows),
            reports=reports,
            alerts=alerts,
            scrape=scrape,
            version=version,
            retrain_requests=retrain_requests,
        )
        echo("")
        echo(_format_story(params, alerts, retrain_requests))
        echo("")
        files = [dashboard, html, out_dir / "daily.csv", alert_path]
        echo(f"Logging to MLflow (experiment {EXPERIMENT}) …")
        record = RunRecord(
            name="monitoring-lab",
            params={**asdict(params), "model_uri": model_uri, "model_version": version},
            metrics=claim_metrics(claims),
            artifacts=[str(f) for f in files],
        )
        run_id = sidecar.submit(log_run_record, EXPERIMENT, record).result()
    return LabResult(
        lab="monitoring",
        question=QUESTION,
        claims=claims,
        artifacts=[artifact_path(f) for f in files],
        mlflow={"experiment": EXPERIMENT, "run_id": run_id},
    )


def register_champion(model_file: str, name: str, sha: str) -> tuple[str, str]:
    """Log and register the model (once per distinct file) and point ``champion`` at it;
    return (``models:/name@champion``, version). Runs in the sidecar process."""
    import mlflow

    from labs.common.tracking import configure_tracking, load_model_file, log_sklearn_model
    from labs.common.tracking import start_run as start_mlflow_run

    configure_tracking()
    client = mlflow.MlflowClient()
    # Same seed → same model bytes: reuse that version rather than pile up identical ones.
    try:
        known = client.search_model_versions(f"name='{name}' and tags.model_sha256='{sha}'")
    except mlflow.exceptions.MlflowException:
        known = []
    if known:
        version = str(max(int(v.version) for v in known))
    else:
        model = load_model_file(Path(model_file))
        with start_mlflow_run(EXPERIMENT, "champion", {"model_sha256": sha}):
            info = log_sklearn_model(model, registered_model_name=name)
        version = str(info.registered_model_version)
        client.set_model_version_tag(name, version, "model_sha256", sha)
    client.set_registered_model_alias(name, "champion", version)
    return f"models:/{name}@champion", version


# --- the replay: concurrent HTTP clients --------------------------------------------------


def _replay(
    params: MonitoringParams, stream: pd.DataFrame, url: str
) -> tuple[list[Sent], list[Sent]]:
    """Send every day's customers, in requests of ``rows_per_request``, from ``clients``
    concurrent threads; on ``bad_input_day`` also send the malformed requests."""
    import httpx

    sent: list[Sent] = []
    bad: list[Sent] = []
    limits = httpx.Limits(max_connections=params.clients, max_keepalive_connections=params.clients)
    with (
        httpx.Client(base_url=url, timeout=30.0, limits=limits) as client,
        ThreadPoolExecutor(params.clients, thread_name_prefix="client") as clients,
    ):
        for day, batch in stream.groupby(DAY, sort=True):
            requests = _requests_for_day(int(day), batch, params.rows_per_request)
            sent.extend(clients.map(lambda req: _post(client, *req), requests))
            if day == params.bad_input_day:
                bad.extend(_send_bad_requests(client, int(day), batch))
    return sent, bad


def _requests_for_day(
    day: int, batch: pd.DataFrame, rows_per_request: int
) -> list[tuple[str, int, list[dict[str, Any]]]]:
    records = batch[list(FEATURES)].astype({c: str for c in CATEGORICAL_FEATURES})
    rows = records.to_dict("records")
    return [
        (f"d{day:03d}-{k:04d}", day, rows[start : start + rows_per_request])
        for k, start in enumerate(range(0, len(rows), rows_per_request))
    ]


def _outcomes(day: int, batch: pd.DataFrame, rows_per_request: int) -> pd.DataFrame:
    """The label feed for a day: each row's request id and position, its day, its true label."""
    n = len(batch)
    index = np.arange(n)
    return pd.DataFrame(
        {
            "request_id": [f"d{day:03d}-{k:04d}" for k in index // rows_per_request],
            "row_index": index % rows_per_request,
            DAY: day,
            TARGET: batch[TARGET].to_numpy(),
        }
    )


def _post(client: Any, request_id: str, day: int, rows: list[dict[str, Any]]) -> Sent:
    import httpx

    start = time.perf_counter()
    try:
        status = client.post("/predict", json={"rows": rows, "request_id": request_id}).status_code
    except httpx.TransportError:
        status = 0  # connection refused or reset: counted as not served
    return Sent(request_id, day, len(rows), status, time.perf_counter() - start)


def _send_bad_requests(client: Any, day: int, batch: pd.DataFrame) -> list[Sent]:
    row = batch[list(FEATURES)].astype({c: str for c in CATEGORICAL_FEATURES})
    first = row.iloc[0].to_dict()
    first = {k: (v.item() if hasattr(v, "item") else v) for k, v in first.items()}
    out = []
    for k, (_, build) in enumerate(BAD_REQUESTS):
        start = time.perf_counter()
        status = client.post("/predict", json=build(dict(first))).status_code
        out.append(Sent(f"bad-{k}", day, 1, status, time.perf_counter() - start))
    return out


# --- claims --------------------------------------------------------------------------------


def make_claims(
    params: MonitoringParams,
    *,
    reference: Reference,
    sent: list[Sent],
    bad: list[Sent],
    logged: tuple[int, int],
    reports: list[DayReport],
    alerts: list[Alert],
    scrape: str,
    version: str,
    retrain_requests: list[Alert],
) -> list[Claim]:
    """Turn the measurements into the interview answer's claims, each decided by numbers."""
    metrics = parse_metrics(scrape)
    ok = [s for s in sent if s.status == 200]
    latencies_ms = np.array([s.seconds for s in sent]) * 1000
    p50, p95, p99 = (float(np.percentile(latencies_ms, q)) for q in (50, 95, 99))
    server_p99 = histogram_quantile(metrics, "churn_request_latency_seconds", 0.99, "/predict")

    cov, concept, within = (
        params.covariate_start_day,
        params.concept_start_day,
        params.alert_within_days,
    )
    labels_arrive = concept + params.label_delay_days
    drift_days = sorted({a.day for a in alerts if a.kind == "drift"})
    quality = [a for a in alerts if a.kind == "quality"]
    first_drift = drift_days[0] if drift_days else None
    first_quality = min(quality, key=lambda a: a.day) if quality else None
    quiet_alerts = [a for a in alerts if a.data_day < cov]
    covariate_quality = [a for a in quality if cov <= a.data_day < concept]
    by_day = {r.day: r for r in reports}
    first_day = by_day.get(first_drift) if first_drift is not None else None
    labelled = {r.labelled_day: r.quality for r in reports if r.labelled_day is not None}
    floors = {
        "roc_auc": reference.quality["roc_auc"] - params.auc_drop_alert,
        "accuracy": reference.quality["accuracy"] - params.accuracy_drop_alert,
    }

    def labelled_min(metric: str, days: range) -> float:
        values = [labelled[d][metric] for d in days if d in labelled]
        return min(values) if values else math.nan

    def series(name: str, **labels: str) -> float:
        return sum(
            v for lab, v in metrics.get(name, []) if all(lab.get(k) == x for k, x in labels.items())
        )

    alert_counts = {k: sum(a.kind == k for a in alerts) for k in ("drift", "quality")}
    last = reports[-1]
    info = [lab for lab, _ in metrics.get("churn_model_info", [])]
    missing_series = [s for s in EXPECTED_SERIES if s not in metrics]
    return [
        Claim(
            "latency_p99",
            f"Serving is fast under concurrent load: p99 request latency ≤ "
            f"{params.latency_p99_slo_ms:g} ms ({params.clients} clients, "
            f"{params.rows_per_request} rows per request).",
            passed=p99 <= params.latency_p99_slo_ms,
            measured={
                "p50_ms": p50,
                "p95_ms": p95,
                "p99_ms": p99,
                "slo_ms": params.latency_p99_slo_ms,
                "server_p99_bucket_ms": server_p99 * 1000,
                "requests": len(sent),
                "rows_per_request": params.rows_per_request,
                "clients": params.clients,
            },
        ),
        Claim(
            "no_request_lost",
            "No request is lost: every request sent was answered 200 and is in the prediction "
            "log, row for row.",
            passed=len(ok) == len(sent) == logged[0]
            and sum(s.rows for s in sent) == logged[1]
            and series("churn_requests_total", endpoint="/predict", status="200") == len(sent),
            measured={
                "requests_sent": len(sent),
                "requests_ok": len(ok),
                "requests_logged": logged[0],
                "rows_sent": sum(s.rows for s in sent),
                "rows_logged": logged[1],
                "server_counted_200": series(
                    "churn_requests_total", endpoint="/predict", status="200"
                ),
            },
        ),
        Claim(
            "bad_input_refused",
            "Malformed requests are refused with a readable 422 and counted by reason — never "
            "a 5xx, never scored or logged.",
            passed=bool(bad)
            and all(s.status == 422 for s in bad)
            and series("churn_validation_failures_total") >= len(bad)
            and series("churn_request_errors_total", endpoint="/predict", status="422") == len(bad)
            and not any(s.status >= 500 for s in [*sent, *bad]),
            measured={
                "bad_sent": len(bad),
                "bad_answered_422": sum(s.status == 422 for s in bad),
                "validation_failures_counted": series("churn_validation_failures_total"),
                "reasons": sorted(
                    lab["reason"]
                    for lab, v in metrics.get("churn_validation_failures_total", [])
                    if v > 0
                ),
                "responses_5xx": sum(s.status >= 500 for s in [*sent, *bad]),
            },
        ),
        Claim(
            "drift_alert_on_time",
            f"The covariate shift from day {cov} raises a drift alert within {within} days, "
            "before any label exists.",
            passed=first_drift is not None and cov <= first_drift <= cov + within,
            measured={
                "shift_starts_day": cov,
                "first_drift_alert_day": first_drift if first_drift is not None else -1,
                "drift_share_that_day": first_day.drift_share if first_day else math.nan,
                "prediction_p_value_that_day": (
                    first_day.prediction_p_value if first_day else math.nan
                ),
                "drift_share_alert": params.drift_share_alert,
            },
        ),
        Claim(
            "quality_alert_on_time",
            f"Concept drift from day {concept} raises a quality alert within {within} days of "
            f"its labels arriving (day {labels_arrive}), and asks for retraining once.",
            passed=first_quality is not None
            and labels_arrive <= first_quality.day <= labels_arrive + within
            and first_quality.data_day >= concept
            and len(retrain_requests) == 1,
            measured={
                "concept_starts_day": concept,
                "labels_arrive_day": labels_arrive,
                "first_quality_alert_day": first_quality.day if first_quality else -1,
                "about_day": first_quality.data_day if first_quality else -1,
                "roc_auc_that_day": labelled.get(concept, {}).get("roc_auc", math.nan),
                "roc_auc_reference": reference.quality["roc_auc"],
                "roc_auc_floor": floors["roc_auc"],
                "retrain_requests": len(retrain_requests),
            },
        ),
        Claim(
            "quiet_days_quiet",
            f"No alert of any kind about the quiet days 0–{cov - 1}.",
            passed=not quiet_alerts,
            measured={
                "quiet_days": cov,
                "alerts": len(quiet_alerts),
                "max_drift_share": max(by_day[d].drift_share for d in range(cov)),
                "min_prediction_p_value": min(by_day[d].prediction_p_value for d in range(cov)),
                "p_value_threshold": last.drift_threshold,
                "min_roc_auc": labelled_min("roc_auc", range(cov)),
                "min_accuracy": labelled_min("accuracy", range(cov)),
                "roc_auc_floor": floors["roc_auc"],
                "accuracy_floor": floors["accuracy"],
            },
        ),
        Claim(
            "drift_is_not_degradation",
            f"The covariate shift alone (days {cov}–{concept - 1}) drifts the inputs but raises "
            "no quality alert: drift says 'look', only labels say 'broken'.",
            passed=not covariate_quality and bool(drift_days),
            measured={
                "quality_alerts": len(covariate_quality),
                "drift_alert_days": sum(cov <= d < concept for d in drift_days),
                "min_roc_auc": labelled_min("roc_auc", range(cov, concept)),
                "min_accuracy": labelled_min("accuracy", range(cov, concept)),
                "roc_auc_floor": floors["roc_auc"],
                "accuracy_floor": floors["accuracy"],
            },
        ),
        Claim(
            "metrics_exposed",
            "/metrics exposes every expected series, consistent with the logs: predictions by "
            "class, alerts by kind, the last drift share, the served model version.",
            passed=not missing_series
            and series("churn_predictions_total") == logged[1]
            and all(series("churn_alerts_total", kind=k) == n for k, n in alert_counts.items())
            and math.isclose(series("churn_drift_share"), last.drift_share)
            and any(lab.get("version") == version for lab in info),
            measured={
                "series_expected": len(EXPECTED_SERIES),
                "series_missing": missing_series,
                "predictions_counted": series("churn_predictions_total"),
                "alerts_drift": series("churn_alerts_total", kind="drift"),
                "alerts_quality": series("churn_alerts_total", kind="quality"),
                "alerts_logged": len(alerts),
                "drift_share_gauge": series("churn_drift_share"),
                "rolling_accuracy_gauge": series("churn_rolling_accuracy"),
                "model_version": version,
            },
        ),
    ]


def parse_metrics(text: str) -> dict[str, list[tuple[dict[str, str], float]]]:
    """A Prometheus scrape as {sample name: [(labels, value), ...]}."""
    from prometheus_client.parser import text_string_to_metric_families

    out: dict[str, list[tuple[dict[str, str], float]]] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            out.setdefault(sample.name, []).append((dict(sample.labels), float(sample.value)))
    return out


def histogram_quantile(
    metrics: Mapping[str, list[tuple[dict[str, str], float]]], name: str, q: float, endpoint: str
) -> float:
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


# --- the worst day, the dashboard, the printout ---------------------------------------------


def _latency_by_day(sent: list[Sent]) -> pd.DataFrame:
    frame = pd.DataFrame([asdict(s) for s in sent])
    return (
        frame.groupby("day")["seconds"]
        .agg(latency_p95_ms=lambda s: 1000 * float(np.percentile(s, 95)), requests="count")
        .reset_index()
    )


def _worst_day_report(
    params: MonitoringParams,
    reference: Reference,
    log_path: Path,
    outcomes: pd.DataFrame,
    day: int | None,
    out_dir: Path,
) -> Path:
    """Evidently's drift + classification report of the worst labelled day, from the log."""
    from labs.common.drift import detect_drift

    day = 0 if day is None else day
    scored = join_outcomes(read_predictions(log_path), outcomes[outcomes[DAY] == day])
    columns = [*FEATURES, TARGET, PROBA, LABEL]
    for old in out_dir.glob("report_worst_day_*.html"):
        old.unlink()
    path = out_dir / f"report_worst_day_{day:02d}.html"
    detect_drift(
        reference.frame[columns],
        scored[columns],
        monitored=[PROBA],
        alpha=params.alpha,
        classification=(TARGET, LABEL, PROBA),
        html_path=path,
    )
    return path


# Colours: quality metrics, drift, alert kinds, the two phases of the story.
_COLOURS = {
    "roc_auc": "#1f6fb2",
    "accuracy": "#c0392b",
    "precision": "#95a5a6",
    "recall": "#7dbb8a",
    "drift": "#4a5a7d",
    "prediction": "#8e44ad",
    "latency": "#138d75",
}
_LABELS = {
    "roc_auc": "ROC-AUC",
    "accuracy": "accuracy",
    "precision": "precision",
    "recall": "recall",
}


def _plot_dashboard(
    params: MonitoringParams,
    table: pd.DataFrame,
    alerts: list[Alert],
    reference: Reference,
    path: Path,
) -> Path:
    """Four panels on one day axis: quality, drift, latency, alerts; phases shaded."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(
        4, 1, figsize=(11, 10), sharex=True, gridspec_kw={"height_ratios": [3, 2, 1.6, 1]}
    )
    quality_ax, drift_ax, latency_ax, alert_ax = axes
    days, cov, concept = table["day"], params.covariate_start_day, params.concept_start_day
    for ax in axes:
        ax.axvspan(cov - 0.5, concept - 0.5, color="#f5b041", alpha=0.13, lw=0)
        ax.axvspan(concept - 0.5, params.days - 0.5, color="#e74c3c", alpha=0.10, lw=0)
        ax.grid(axis="y", alpha=0.3)

    # 1. Quality per batch day, once its labels arrived; the alert floors dotted.
    for metric in QUALITY_METRICS:
        main = metric in ("roc_auc", "accuracy")
        quality_ax.plot(
            days, table[metric], marker="o", ms=3.5 if main else 2, lw=2 if main else 1,
            color=_COLOURS[metric], label=_LABELS[metric], zorder=3 if main else 2,
        )  # fmt: skip
    for metric, drop in (
        ("roc_auc", params.auc_drop_alert),
        ("accuracy", params.accuracy_drop_alert),
    ):
        quality_ax.axhline(
            reference.quality[metric] - drop, color=_COLOURS[metric], ls=":", lw=1.4,
            label=f"{_LABELS[metric]} alert floor (reference − {drop:g})",
        )  # fmt: skip
    for alert in (a for a in alerts if a.kind == "quality" and a.new):
        quality_ax.annotate(
            f"quality alert, raised on day {alert.day}\n(when these labels arrived)",
            (alert.data_day, alert.value), xytext=(alert.data_day + 1.5, 0.12),
            fontsize=8, color=_COLOURS["accuracy"], bbox={"fc": "white", "ec": "none"},
            arrowprops={"arrowstyle": "->", "color": _COLOURS["accuracy"], "lw": 1},
        )  # fmt: skip
    last_labelled = int(table["day"][table["roc_auc"].notna()].max())
    if last_labelled < params.days - 1:
        quality_ax.text(
            params.days - 0.6, 0.93, f"labels of days {last_labelled + 1}–{params.days - 1}\n"
            "not in yet", fontsize=8, ha="right", va="top", color="#555",
        )  # fmt: skip
    quality_ax.text(0, 0.04, "quiet days", fontsize=9, color="#555")
    quality_ax.text(cov, 0.04, "covariate shift →", fontsize=9, color="#b9770e")
    quality_ax.text(concept, 0.04, "+ concept drift →", fontsize=9, color="#a93226")
    quality_ax.set(
        ylim=(0, 1.02),
        ylabel="on the day's labels",
        title=f"Quality of each day's predictions (labels arrive {params.label_delay_days} "
        "days later)",
    )
    quality_ax.legend(loc="lower left", bbox_to_anchor=(0, 0.1), fontsize=8, ncol=3)

    # 2. Drift of each day's batch against the reference: no labels needed.
    drift_ax.bar(days, table["drift_share"], color=_COLOURS["drift"], label="features drifted")
    drift_ax.axhline(params.drift_share_alert, color="k", ls=":", lw=1.2)
    drift_ax.text(-0.4, params.drift_share_alert + 0.03, "drift alert threshold", fontsize=8)
    flagged = table[table["prediction_drift"].astype(bool)]
    drift_ax.scatter(
        flagged["day"], [0.85] * len(flagged), marker="v", s=28,
        color=_COLOURS["prediction"], label="prediction drift", zorder=3,
    )  # fmt: skip
    drift_ax.set(
        ylim=(0, 1), ylabel="share of features",
        title="Data and prediction drift of each day's batch (K-S / χ², Bonferroni)",
    )  # fmt: skip
    drift_ax.legend(loc="upper left", fontsize=8, ncol=2)

    # 3. What the clients waited, per day.
    slo = params.latency_p99_slo_ms
    latency_ax.plot(
        days, table["latency_p95_ms"], marker="o", ms=3, color=_COLOURS["latency"],
        label=f"p95 per day ({params.clients} clients, {params.rows_per_request} rows/request)",
    )  # fmt: skip
    latency_ax.axhline(slo, color="k", ls=":", lw=1.2)
    latency_ax.text(-0.4, slo * 1.03, f"p99 SLO {slo:g} ms", fontsize=8, va="bottom")
    latency_ax.set(ylim=(0, slo * 1.3), ylabel="ms", title="Request latency, client side")
    latency_ax.legend(loc="center left", fontsize=8)

    # 4. Alerts: a tick for every day a rule fired, a star where an incident began.
    for row, kind in enumerate(("quality", "drift")):
        fired = [a for a in alerts if a.kind == kind]
        colour = _COLOURS["drift" if kind == "drift" else "accuracy"]
        alert_ax.scatter(
            [a.day for a in fired], [row] * len(fired), marker="|", s=160, color=colour
        )
        new = [a.day for a in fired if a.new]
        alert_ax.scatter(new, [row] * len(new), marker="*", s=160, color=colour, zorder=3)
        for day in new:
            alert_ax.annotate(
                f"day {day}", (day, row), xytext=(6, 4), textcoords="offset points", fontsize=8
            )
    alert_ax.set(
        yticks=[0, 1], yticklabels=["quality", "drift"], ylim=(-0.7, 1.7), xlabel="day",
        title="Alerts raised, by the day the job raised them (★ a new incident)",
    )  # fmt: skip
    alert_ax.set_xticks(range(0, params.days, 2))
    alert_ax.set_xlim(-0.7, params.days - 0.3)
    fig.suptitle(
        f"Monitoring the churn model — {params.days} days of production, one panel per signal"
    )
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def _format_report(r: DayReport) -> str:
    drift = f"drift share {r.drift_share:.2f}" + (
        ", prediction drift" if r.prediction_drift else ""
    )
    quality = "no labels yet"
    if r.labelled_day is not None:
        q = r.quality
        quality = f"day {r.labelled_day} labels: AUC {q['roc_auc']:.3f}, acc {q['accuracy']:.3f}"
    alerts = " ".join(f"ALERT {a.kind}" + ("" if a.new else " (ongoing)") for a in r.alerts)
    return f"  day {r.day:2d}  {drift:<36} {quality:<40} {alerts}"


def _format_story(
    params: MonitoringParams, alerts: list[Alert], retrain_requests: list[Alert]
) -> str:
    first = {
        k: min((a.day for a in alerts if a.kind == k), default=None) for k in ("drift", "quality")
    }
    asked = ", ".join(f"day {a.day} ({a.metric} {a.value:.3f})" for a in retrain_requests)
    return "\n".join(
        [
            f"What happened: quiet days 0–{params.covariate_start_day - 1}; covariate shift "
            f"from day {params.covariate_start_day} → first drift alert on day {first['drift']};",
            f"concept drift from day {params.concept_start_day} → invisible to the drift tests "
            f"(already firing), first quality alert on day {first['quality']}, when its labels "
            f"arrived ({params.label_delay_days} days late).",
            f"Retraining requested: {asked or 'never'}.",
        ]
    )
