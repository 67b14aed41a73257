"""The monitoring answer's claims, each decided by numbers measured in the run.

Inputs are what the lab measured: the replay's records (what the clients saw), the prediction
log's counts, the daily reports and alert log of the monitoring job, and one scrape of
``/metrics`` at the end.
"""

from __future__ import annotations

import math

from labs.common.replay import VALID, ReplayResult
from labs.common.results import Claim
from labs.common.serving.metrics import histogram_quantile, parse_metrics, series
from labs.monitoring.monitor import Alert, AlertRules, DayReport, Reference
from labs.monitoring.noise import QualityNoise
from labs.monitoring.params import MonitoringParams

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


def make_claims(
    params: MonitoringParams,
    *,
    rules: AlertRules,
    noise: QualityNoise,
    reference: Reference,
    traffic: ReplayResult,
    logged: tuple[int, int],
    reports: list[DayReport],
    alerts: list[Alert],
    scrape: str,
    version: str,
    retrain_requests: list[Alert],
) -> list[Claim]:
    """Turn the measurements into the interview answer's claims, each decided by numbers."""
    metrics = parse_metrics(scrape)
    sent = traffic.select(tag=VALID)
    bad = [r for r in traffic.records if r.tag != VALID]
    ok = [s for s in sent if s.status == 200]
    latency = traffic.summary(tag=VALID)
    p50, p95, p99 = latency.p50_ms, latency.p95_ms, latency.p99_ms
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
        "roc_auc": reference.quality["roc_auc"] - rules.auc_drop_alert,
        "accuracy": reference.quality["accuracy"] - rules.accuracy_drop_alert,
    }
    k = params.quality_alert_sigmas

    def labelled_min(metric: str, days: range) -> float:
        values = [labelled[d][metric] for d in days if d in labelled]
        return min(values) if values else math.nan

    def served(name: str, **labels: str) -> float:
        return series(metrics, name, **labels)

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
            and served("churn_requests_total", endpoint="/predict", status="200") == len(sent),
            measured={
                "requests_sent": len(sent),
                "requests_ok": len(ok),
                "requests_logged": logged[0],
                "rows_sent": sum(s.rows for s in sent),
                "rows_logged": logged[1],
                "server_counted_200": served(
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
            and served("churn_validation_failures_total") >= len(bad)
            and served("churn_request_errors_total", endpoint="/predict", status="422") == len(bad)
            and not any(s.status >= 500 for s in [*sent, *bad]),
            measured={
                "bad_sent": len(bad),
                "bad_answered_422": sum(s.status == 422 for s in bad),
                "validation_failures_counted": served("churn_validation_failures_total"),
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
            f"before any label exists (its labels arrive on day {cov + params.label_delay_days}).",
            passed=first_drift is not None
            and cov <= first_drift <= cov + within
            and first_drift < cov + params.label_delay_days,
            measured={
                "shift_starts_day": cov,
                "labels_arrive_day": cov + params.label_delay_days,
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
                "roc_auc_sigma": noise.sigma["roc_auc"],
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
            f"no quality alert — the floors sit {k:g} σ of the quality's day-to-day noise below "
            "the reference, σ measured on no-drift days before the month: drift says 'look', "
            "only labels say 'broken'.",
            passed=not covariate_quality and bool(drift_days),
            measured={
                "quality_alerts": len(covariate_quality),
                "drift_alert_days": sum(cov <= d < concept for d in drift_days),
                "roc_auc_sigma": noise.sigma["roc_auc"],
                "accuracy_sigma": noise.sigma["accuracy"],
                "sigmas": k,
                "noise_days": noise.days,
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
            and served("churn_predictions_total") == logged[1]
            and all(served("churn_alerts_total", kind=k) == n for k, n in alert_counts.items())
            and math.isclose(served("churn_drift_share"), last.drift_share)
            and any(lab.get("version") == version for lab in info),
            measured={
                "series_expected": len(EXPECTED_SERIES),
                "series_missing": missing_series,
                "predictions_counted": served("churn_predictions_total"),
                "alerts_drift": served("churn_alerts_total", kind="drift"),
                "alerts_quality": served("churn_alerts_total", kind="quality"),
                "alerts_logged": len(alerts),
                "drift_share_gauge": served("churn_drift_share"),
                "rolling_accuracy_gauge": served("churn_rolling_accuracy"),
                "model_version": version,
            },
        ),
    ]
