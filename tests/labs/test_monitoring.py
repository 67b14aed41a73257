"""Lab monitoring: every claim asserted from the numbers of its validated summary (a real
server, concurrent clients, a shortened month), what the dashboard draws, the daily job's
logic, the cases where nothing may alert, and the job's counterfactuals over the run's own
log (a quality floor inside the noise, drift checked on labelled batches). The counterfactuals
that need their own run are in ``test_monitoring_counterfactuals.py``.

The latency claim is decided by the SLO in params.yaml like any other claim; the benchmark
(``benchmarks/bench_monitoring.py``) measures it on the full month and fails on a miss.
"""

from __future__ import annotations

import math
import shutil
from dataclasses import replace
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from labs.common.data import (
    CATEGORIES,
    DAY,
    FEATURES,
    LABEL,
    PROBA,
    TARGET,
    make_churn_data,
    make_production_stream,
)
from labs.common.model import TrainParams, split_xy, train_model
from labs.common.plots import read_drawing
from labs.common.results import Summary, format_summary, read_summary, stamp, write_summary
from labs.monitoring.alerts import append_alerts, read_alerts, retrain_trigger
from labs.monitoring.claims import EXPECTED_SERIES
from labs.monitoring.counterfactuals import DriftWaitsForLabels
from labs.monitoring.dashboard import TITLES
from labs.monitoring.lab import QUESTION, run
from labs.monitoring.monitor import Alert, AlertRules, Monitor, Reference
from labs.monitoring.params import MonitoringParams
from labs.monitoring.steps import MonitorJob, MonitorSteps, run_monitor_job, summarize
from labs.monitoring.traffic import BAD_REQUESTS

# A shortened story: quiet days 0-3, covariate shift from day 4, concept drift from day 8,
# labels two days late (so the labels of day 8 arrive on day 10).
SMALL = MonitoringParams(
    train_rows=1500,
    reference_rows=1000,
    days=12,
    rows_per_day=200,
    covariate_start_day=4,
    concept_start_day=8,
    label_delay_days=2,
    bad_input_day=1,
    registered_model="churn-model-monitoring-test",
)
REQUESTS = SMALL.days * SMALL.rows_per_day // SMALL.rows_per_request  # 120
CLAIMS = [
    "latency_p99", "no_request_lost", "bad_input_refused", "drift_alert_on_time",
    "quality_alert_on_time", "quiet_days_quiet", "drift_is_not_degradation", "metrics_exposed",
]  # fmt: skip


@pytest.fixture(scope="module")
def lab_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Summary, Path, list[Alert], str]:
    out = tmp_path_factory.mktemp("monitoring")
    retrain_requests: list[Alert] = []
    result = run(SMALL, out, on_quality_alert=retrain_requests.append)
    stamp(result, params=SMALL)
    summary = read_summary(write_summary(result, out))  # validated against the schema
    return summary, out, retrain_requests, format_summary(result)


@pytest.fixture(scope="module")
def lab(lab_run) -> Summary:
    return lab_run[0]


def measured(lab: Summary, claim: str) -> dict[str, Any]:
    return dict(lab.claim(claim).measured)


def lab_rules(lab: Summary, sigmas: float | None = None) -> AlertRules:
    """The alert rules the lab ran with (its floors were calibrated in the run), or with the
    quality floors at ``sigmas`` × the calibrated noise instead."""
    m = measured(lab, "drift_is_not_degradation")
    k = m["sigmas"] if sigmas is None else sigmas
    return SMALL.rules({"roc_auc": k * m["roc_auc_sigma"], "accuracy": k * m["accuracy_sigma"]})


def job_over(out: Path, alert_log: Path, days: Any, rules: AlertRules) -> MonitorJob:
    """The monitoring job over the files a lab run left in ``out``, for ``days`` only."""
    return MonitorJob(
        prediction_log=out / "predictions.sqlite",
        outcomes=out / "outcomes.csv",
        reference=out / "reference.csv",
        alert_log=alert_log,
        rules=rules,
        days=tuple(days),
    )


def test_the_summary_follows_the_contract_with_the_same_claims(lab_run) -> None:
    lab, out, _, printout = lab_run
    assert lab.lab == "monitoring" and lab.question == QUESTION
    assert [c.id for c in lab.claims] == CLAIMS
    # Every claim holds but the latency SLO, a wall-time goal: `make bench` and the claims audit
    # hold it on an idle machine; here it is only checked to be decided by the SLO (below).
    assert [c.id for c in lab.claims if not c.passed and c.id != "latency_p99"] == []
    assert lab.params["days"] == 12 and lab.mlflow["experiment"] == "lab-monitoring"
    assert {Path(a).name for a in lab.artifacts} >= {"dashboard.png", "daily.csv", "alerts.jsonl"}
    assert "✓ quality_alert_on_time" in printout


def test_every_request_is_answered_timed_and_counted(lab: Summary) -> None:
    m = measured(lab, "latency_p99")
    assert m["requests"] == REQUESTS and m["clients"] == 4 and m["rows_per_request"] == 20
    assert 0 < m["p50_ms"] <= m["p95_ms"] <= m["p99_ms"] and m["slo_ms"] == 50.0
    # decided by the SLO fixed in params.yaml before the run, not by the numbers it judges
    assert lab.claim("latency_p99").passed is (m["p99_ms"] <= SMALL.latency_p99_slo_ms)
    # the server's own histogram saw the requests too (an upper bucket bound, in ms)
    assert 0 < m["server_p99_bucket_ms"] < math.inf


def test_no_request_lost_under_concurrent_clients(lab: Summary) -> None:
    m = measured(lab, "no_request_lost")
    assert m["requests_sent"] == m["requests_ok"] == m["requests_logged"] == REQUESTS
    assert m["server_counted_200"] == REQUESTS
    assert m["rows_sent"] == m["rows_logged"] == SMALL.days * SMALL.rows_per_day


def test_malformed_requests_are_422_by_reason_never_5xx(lab: Summary) -> None:
    m = measured(lab, "bad_input_refused")
    assert m["bad_sent"] == m["bad_answered_422"] == m["validation_failures_counted"]
    assert m["bad_sent"] == len(BAD_REQUESTS) == 6
    assert m["reasons"] == [
        "extra_forbidden", "float_type", "less_than_equal", "literal_error", "missing", "too_short",
    ]  # fmt: skip
    assert m["responses_5xx"] == 0


def test_drift_alert_within_two_days_of_the_shift(lab: Summary) -> None:
    m = measured(lab, "drift_alert_on_time")
    assert 4 <= m["first_drift_alert_day"] <= 4 + SMALL.alert_within_days
    assert m["first_drift_alert_day"] < m["labels_arrive_day"] == 4 + SMALL.label_delay_days
    assert m["drift_share_that_day"] >= SMALL.drift_share_alert
    assert m["prediction_p_value_that_day"] < SMALL.alpha / (len(FEATURES) + 1)


def test_quality_alert_when_the_labels_arrive_and_retraining_requested_once(lab_run) -> None:
    lab, _, retrain_requests, _ = lab_run
    m = measured(lab, "quality_alert_on_time")
    assert m["labels_arrive_day"] == 10 and 10 <= m["first_quality_alert_day"] <= 12
    assert m["about_day"] >= 8
    assert m["roc_auc_that_day"] < m["roc_auc_floor"] < m["roc_auc_reference"]
    assert m["roc_auc_reference"] - m["roc_auc_that_day"] > 0.2
    assert m["retrain_requests"] == 1
    assert [(a.kind, a.day, a.new) for a in retrain_requests] == [
        ("quality", m["first_quality_alert_day"], True)
    ]


def test_quiet_days_stay_quiet_with_margin(lab: Summary) -> None:
    m = measured(lab, "quiet_days_quiet")
    assert m["alerts"] == 0 and m["quiet_days"] == 4
    assert m["max_drift_share"] < SMALL.drift_share_alert
    assert m["min_prediction_p_value"] >= m["p_value_threshold"]
    assert m["min_roc_auc"] > m["roc_auc_floor"] and m["min_accuracy"] > m["accuracy_floor"]


def test_covariate_shift_alone_drifts_but_is_no_quality_alert(lab: Summary) -> None:
    m = measured(lab, "drift_is_not_degradation")
    assert m["quality_alerts"] == 0 and m["drift_alert_days"] == 8 - 4
    assert m["min_roc_auc"] > m["roc_auc_floor"] and m["min_accuracy"] > m["accuracy_floor"]
    # the floors are 4 σ of the quality's day-to-day noise below the reference, σ measured on
    # no-drift days of their own seeds before the month (not a guessed drop)
    reference = measured(lab, "quality_alert_on_time")["roc_auc_reference"]
    assert m["sigmas"] == 4.0 and m["noise_days"] == SMALL.quality_noise_days
    assert m["roc_auc_floor"] == pytest.approx(reference - 4 * m["roc_auc_sigma"])
    assert 0.01 < m["roc_auc_sigma"] < 0.1 and 0.01 < m["accuracy_sigma"] < 0.1


def test_metrics_agree_with_the_logs(lab_run) -> None:
    lab, out, _, _ = lab_run
    m = measured(lab, "metrics_exposed")
    assert m["series_missing"] == [] and m["series_expected"] == len(EXPECTED_SERIES)
    assert m["predictions_counted"] == SMALL.days * SMALL.rows_per_day
    alerts = read_alerts(out / "alerts.jsonl")
    assert m["alerts_logged"] == len(alerts) == m["alerts_drift"] + m["alerts_quality"]
    assert m["alerts_quality"] == sum(a.kind == "quality" for a in alerts) >= 1
    daily = pd.read_csv(out / "daily.csv")
    assert m["drift_share_gauge"] == pytest.approx(daily["drift_share"].iloc[-1])


def test_the_dashboard_draws_the_measured_numbers(lab_run) -> None:
    lab, out, _, _ = lab_run
    drawn = read_drawing(out / "dashboard.png")
    quality, drift, latency, alerts_ax = drawn["axes"]
    daily = pd.read_csv(out / "daily.csv")
    days = [float(d) for d in daily["day"]]

    def line(ax: dict, label: str) -> dict:
        return next(x for x in ax["lines"] if x["label"] == label)

    def values(column: str) -> list[float | None]:
        return [None if pd.isna(v) else pytest.approx(float(v)) for v in daily[column]]

    assert quality["title"].startswith(TITLES["quality"]) and quality["ylim"] == [0, 1]
    assert line(quality, "ROC-AUC")["x"] == days and line(quality, "ROC-AUC")["y"] == values(
        "roc_auc"
    )
    assert line(quality, "accuracy")["y"] == values("accuracy")
    q = measured(lab, "quality_alert_on_time")
    drop = q["roc_auc_reference"] - q["roc_auc_floor"]
    floor_line = line(quality, f"ROC-AUC alert floor (reference − {drop:.3f})")
    assert floor_line["y"] == [pytest.approx(q["roc_auc_floor"])] * 2
    assert drift["ylim"] == [0, 1] and drift["bars"][0]["heights"] == values("drift_share")
    assert line(drift, "drift alert threshold")["y"] == [SMALL.drift_share_alert] * 2
    # latency: the percentile the SLO is about, from 0, the SLO line in view
    assert latency["ylabel"] == "ms" and latency["ylim"][0] == 0
    assert latency["ylim"][1] > SMALL.latency_p99_slo_ms
    p99 = next(x for x in latency["lines"] if x["label"].startswith("p99 per day"))
    assert p99["y"] == values("latency_p99_ms")
    assert line(latency, f"p99 SLO {SMALL.latency_p99_slo_ms:g} ms")["y"] == [50.0, 50.0]
    logged = read_alerts(out / "alerts.jsonl")
    for kind in ("drift", "quality"):
        assert line(alerts_ax, f"{kind} alert")["x"] == [a.day for a in logged if a.kind == kind]
        new = [a.day for a in logged if a.kind == kind and a.new]
        assert line(alerts_ax, f"new {kind} incident")["x"] == new
    assert drawn["title"].startswith("Monitoring the churn model — 12 days")


def test_the_worst_day_report_is_a_concept_drift_day(lab: Summary) -> None:
    html = next(Path(a) for a in lab.artifacts if a.endswith(".html"))
    assert "chi-square two-sample" in html.read_text(errors="ignore")  # our test decided
    assert int(html.stem.rsplit("_", 1)[1]) >= SMALL.concept_start_day


def test_mlflow_run_and_the_audited_champion(lab: Summary) -> None:
    import mlflow

    from labs.common.registry import read_audit_log
    from labs.common.tracking import audit_log_path

    run_ = mlflow.get_run(lab.mlflow["run_id"])
    assert run_.data.metrics["claim.no_request_lost.passed"] == 1.0
    assert run_.data.params["registered_model"] == "churn-model-monitoring-test"
    champion = mlflow.MlflowClient().get_model_version_by_alias(
        "churn-model-monitoring-test", "champion"
    )
    assert str(champion.version) == run_.data.params["model_version"]
    moves = [m for m in read_audit_log(audit_log_path()) if m.model == SMALL.registered_model]
    assert moves[-1].action == "promote" and moves[-1].to_version == str(champion.version)


# --- the cases where a claim must NOT hold ----------------------------------------------------


def test_quiet_days_alone_raise_no_alert_so_no_alert_claim_could_hold(lab_run, tmp_path) -> None:
    """The job over the lab's own log, the quiet days only: no drift alert, no quality alert
    — without a shift, 'drift alert on time' and 'quality alert on time' would be false."""
    lab, out, _, _ = lab_run
    job = job_over(out, tmp_path / "alerts.jsonl", range(SMALL.covariate_start_day), lab_rules(lab))
    hook: list[Alert] = []
    reports = run_monitor_job(job, on_quality_alert=hook.append)
    assert summarize(reports)["first_alert_day"] == {"drift": None, "quality": None}
    assert read_alerts(job.alert_log) == [] and hook == []
    assert [r.labelled_day for r in reports] == [None, None, 0, 1]


@pytest.fixture(scope="module")
def scored_quiet_stream() -> tuple[Any, Reference, pd.DataFrame]:
    model = train_model(make_churn_data(1500, seed=3), TrainParams())
    ref = make_churn_data(1000, seed=4)
    ref[PROBA] = model.predict_proba(split_xy(ref)[0])[:, 1]
    stream = make_production_stream(6, 200, seed=5)  # no events
    stream[PROBA] = model.predict_proba(split_xy(stream)[0])[:, 1]
    stream[LABEL] = (stream[PROBA] >= 0.5).astype(int)
    # Labels that have not "arrived" by the last day are garbage: if the job peeked, the
    # quality of those days would collapse and alert.
    late = stream[DAY] > 5 - 2
    stream.loc[late, TARGET] = 1 - stream.loc[late, TARGET]
    return model, Reference.from_scored(ref), stream


def test_no_drift_no_alert_and_labels_used_only_after_the_delay(scored_quiet_stream) -> None:
    _, reference, stream = scored_quiet_stream
    monitor = Monitor(reference, AlertRules(label_delay_days=2))
    reports = [monitor.check_day(day, stream) for day in range(6)]
    assert [a for r in reports for a in r.alerts] == []
    assert [r.labelled_day for r in reports] == [None, None, 0, 1, 2, 3]
    # a lone column may cross its Bonferroni threshold by chance; the rule needs two
    assert max(len(r.drifted_features) for r in reports) <= 1
    assert not any(r.prediction_drift for r in reports)
    assert all(r.quality["roc_auc"] > reference.quality["roc_auc"] - 0.12 for r in reports[2:])
    assert reports[-1].rolling["n_rows"] == 3 * 200  # days 1-3: only labels that have arrived


def test_a_shifted_day_alerts_and_the_alert_says_why(scored_quiet_stream) -> None:
    model, reference, stream = scored_quiet_stream
    day0 = stream[stream[DAY] == 0].copy()
    day0["monthly_charges"] += 25.0  # a price rise …
    day0["contract"] = pd.Categorical(
        ["month-to-month"] * len(day0), categories=list(CATEGORIES["contract"])
    )  # … and everyone on monthly contracts: the model's scores rise with both
    day0[PROBA] = model.predict_proba(split_xy(day0)[0])[:, 1]
    report = Monitor(reference, AlertRules()).check_day(0, day0)
    assert report.drifted_features == ["contract", "monthly_charges"]
    (alert,) = report.alerts
    assert (alert.kind, alert.metric, alert.new) == ("drift", "drift_share", True)
    assert alert.value == pytest.approx(2 / 7) and alert.threshold == 0.25
    assert "contract, monthly_charges" in alert.reason and "prediction drift" in alert.reason


# --- the job's wiring: idempotent, retrains once -----------------------------------------------


def test_rerunning_the_job_is_idempotent_and_retrains_only_once(lab_run, tmp_path) -> None:
    """A re-run writes no duplicate alert and starts no second retraining; a fresh alert log
    sees the incident as new."""
    lab, out, _, _ = lab_run
    day = measured(lab, "quality_alert_on_time")["first_quality_alert_day"]
    job = job_over(out, tmp_path / "alerts.jsonl", [day], lab_rules(lab))
    shutil.copy(out / "alerts.jsonl", job.alert_log)
    before = job.alert_log.read_text()
    hook: list[Alert] = []
    reports = run_monitor_job(job, on_quality_alert=hook.append)
    # drift was already firing the day before; the quality incident starts today …
    assert [(a.kind, a.new) for a in reports[0].alerts] == [("drift", False), ("quality", True)]
    # … but both are already in the log: nothing written twice, no second retraining
    assert job.alert_log.read_text() == before and hook == []

    fresh = replace(job, alert_log=tmp_path / "fresh.jsonl", retrain_deployment="retrain/retrain")
    started: list[dict] = []

    def fake_run(name: str, parameters: dict, timeout: int, tags: list[str]) -> None:
        started.append({"name": name, "parameters": parameters, "timeout": timeout})

    steps = MonitorSteps(
        request_retraining=lambda alert, deployment: retrain_trigger(deployment, run=fake_run)(
            alert
        )
    )
    run_monitor_job(fresh, steps, on_quality_alert=hook.append)
    assert [a.kind for a in hook] == ["quality"]
    assert started == [{"name": "retrain/retrain", "parameters": {}, "timeout": 0}]
    assert len(read_alerts(fresh.alert_log)) == 2


def test_alert_log_is_append_only_and_idempotent(tmp_path) -> None:
    a = Alert("quality", 23, 20, "roc_auc", 0.51, 0.70, "roc_auc 0.510 < 0.700")
    path = tmp_path / "alerts.jsonl"
    assert append_alerts(path, [a]) == [a]
    assert append_alerts(path, [a, replace(a, day=24)]) == [replace(a, day=24)]
    assert read_alerts(path) == [a, replace(a, day=24)]


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"days": 9}, r"monitoring\.days=9"),
        ({"concept_start_day": 3}, r"monitoring\.concept_start_day"),
        ({"alpha": 0.0}, r"monitoring\.alpha"),
        ({"rows_per_request": 0}, r"monitoring\.rows_per_request"),
    ],
)
def test_bad_params_are_refused(change: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        replace(SMALL, **change)


# --- counterfactuals: the claims turn ✗ when the part they are about is broken ------------------


def test_a_quality_floor_inside_the_noise_alerts_on_covariate_shift_alone(lab_run, tmp_path):
    """The job over the lab's own log with floors at 0.5 σ instead of the calibrated 4 σ:
    covariate days alone raise quality alerts — the claim holds only because the floor sits
    outside the day-to-day noise."""
    lab, out, _, _ = lab_run
    cov, concept = SMALL.covariate_start_day, SMALL.concept_start_day
    days = range(SMALL.days)
    calibrated = run_monitor_job(job_over(out, tmp_path / "a.jsonl", days, lab_rules(lab)))
    noisy = run_monitor_job(job_over(out, tmp_path / "b.jsonl", days, lab_rules(lab, 0.5)))

    def covariate_quality_alerts(reports: list) -> list[Alert]:
        alerts = [a for r in reports for a in r.alerts]
        return [a for a in alerts if a.kind == "quality" and cov <= a.data_day < concept]

    assert covariate_quality_alerts(calibrated) == []
    assert covariate_quality_alerts(noisy) != []
    for alert in covariate_quality_alerts(noisy):
        assert alert.value < alert.threshold  # a real breach of the (too tight) floor


def test_drift_checked_on_labelled_batches_comes_as_late_as_the_labels(lab_run, tmp_path):
    lab, out, _, _ = lab_run
    job = job_over(out, tmp_path / "alerts.jsonl", range(SMALL.days), lab_rules(lab))
    reports = run_monitor_job(job, monitor_cls=DriftWaitsForLabels)
    first = summarize(reports)["first_alert_day"]["drift"]
    labels_arrive = SMALL.covariate_start_day + SMALL.label_delay_days
    assert first == labels_arrive == measured(lab, "drift_alert_on_time")["labels_arrive_day"]
