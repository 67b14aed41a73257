"""Lab monitoring: every claim asserted from its numbers (a real server, concurrent clients, a
shortened stream), the daily job's logic, and the cases where nothing may alert."""

from __future__ import annotations

import json
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
    TARGET,
    make_churn_data,
    make_production_stream,
)
from labs.common.model import TrainParams, split_xy, train_model
from labs.common.results import LabResult, finish
from labs.monitoring.lab import EXPECTED_SERIES, MonitoringParams, run
from labs.monitoring.monitor import (
    Alert,
    AlertRules,
    Monitor,
    MonitorJob,
    Reference,
    append_alerts,
    read_alerts,
    retrain_trigger,
    run_monitor_job,
)
from labs.monitoring.predlog import LABEL, PROBA

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


def measured(result: LabResult, claim: str) -> dict:
    return dict(result.claim(claim).measured)


@pytest.fixture(scope="module")
def lab_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[LabResult, Path, list[Alert]]:
    out = tmp_path_factory.mktemp("monitoring")
    retrain_requests: list[Alert] = []
    result = run(SMALL, out, on_quality_alert=retrain_requests.append)
    return result, out, retrain_requests


@pytest.fixture(scope="module")
def lab(lab_run) -> LabResult:
    return lab_run[0]


def test_latency_under_concurrent_load_is_within_the_slo(lab: LabResult) -> None:
    m = measured(lab, "latency_p99")
    assert m["p50_ms"] <= m["p95_ms"] <= m["p99_ms"] <= SMALL.latency_p99_slo_ms
    assert m["clients"] == 4 and m["requests"] == 12 * 200 // 20
    assert 0 < m["server_p99_bucket_ms"] <= SMALL.latency_p99_slo_ms


def test_no_request_lost_under_concurrent_clients(lab: LabResult) -> None:
    m = measured(lab, "no_request_lost")
    assert m["requests_sent"] == m["requests_ok"] == m["requests_logged"] == 120
    assert m["server_counted_200"] == 120
    assert m["rows_sent"] == m["rows_logged"] == 12 * 200


def test_malformed_requests_are_422_by_reason_never_5xx(lab: LabResult) -> None:
    m = measured(lab, "bad_input_refused")
    assert m["bad_sent"] == m["bad_answered_422"] == m["validation_failures_counted"] == 6
    assert m["reasons"] == [
        "extra_forbidden", "float_type", "less_than_equal", "literal_error", "missing", "too_short",
    ]  # fmt: skip
    assert m["responses_5xx"] == 0


def test_drift_alert_within_two_days_of_the_shift(lab: LabResult) -> None:
    m = measured(lab, "drift_alert_on_time")
    assert 4 <= m["first_drift_alert_day"] <= 6
    assert m["drift_share_that_day"] >= SMALL.drift_share_alert
    assert m["prediction_p_value_that_day"] < SMALL.alpha / (len(FEATURES) + 1)


def test_quality_alert_when_the_labels_arrive_and_retraining_requested_once(lab_run) -> None:
    lab, _, retrain_requests = lab_run
    m = measured(lab, "quality_alert_on_time")
    assert m["labels_arrive_day"] == 10 and 10 <= m["first_quality_alert_day"] <= 12
    assert m["about_day"] >= 8
    assert m["roc_auc_that_day"] < m["roc_auc_floor"] < m["roc_auc_reference"]
    assert m["roc_auc_reference"] - m["roc_auc_that_day"] > 0.2
    assert [(a.kind, a.day, a.new) for a in retrain_requests] == [
        ("quality", m["first_quality_alert_day"], True)
    ]


def test_quiet_days_stay_quiet_with_margin(lab: LabResult) -> None:
    m = measured(lab, "quiet_days_quiet")
    assert m["alerts"] == 0
    assert m["max_drift_share"] < SMALL.drift_share_alert
    assert m["min_prediction_p_value"] >= m["p_value_threshold"]
    assert m["min_roc_auc"] > m["roc_auc_floor"] and m["min_accuracy"] > m["accuracy_floor"]


def test_covariate_shift_alone_drifts_but_is_no_quality_alert(lab: LabResult) -> None:
    m = measured(lab, "drift_is_not_degradation")
    assert m["quality_alerts"] == 0 and m["drift_alert_days"] == 8 - 4
    assert m["min_roc_auc"] > m["roc_auc_floor"]


def test_metrics_agree_with_the_logs(lab_run) -> None:
    lab, out, _ = lab_run
    m = measured(lab, "metrics_exposed")
    assert m["series_missing"] == [] and m["series_expected"] == len(EXPECTED_SERIES)
    assert m["predictions_counted"] == 12 * 200
    alerts = read_alerts(out / "alerts.jsonl")
    assert m["alerts_logged"] == len(alerts) == m["alerts_drift"] + m["alerts_quality"]
    assert m["alerts_quality"] == sum(a.kind == "quality" for a in alerts) >= 1
    daily = pd.read_csv(out / "daily.csv")
    assert m["drift_share_gauge"] == pytest.approx(daily["drift_share"].iloc[-1])


def test_every_claim_holds_and_the_contract_files(lab_run, tmp_path, capsys) -> None:
    lab, out, _ = lab_run
    assert lab.passed, [c.id for c in lab.claims if not c.passed]
    assert finish(lab, tmp_path) == 0
    data = json.loads((tmp_path / "summary.json").read_text())
    assert data["lab"] == "monitoring" and data["mlflow"]["experiment"] == "lab-monitoring"
    png = next(Path(a) for a in data["artifacts"] if a.endswith(".png"))
    html = next(Path(a) for a in data["artifacts"] if a.endswith(".html"))
    assert png.stat().st_size > 50_000
    text = html.read_text(errors="ignore")
    assert "chi-square two-sample" in text  # the drift lab's test decided, inside Evidently
    # the worst day is a concept-drift day, where the model's ranking collapsed
    assert int(html.stem.rsplit("_", 1)[1]) >= SMALL.concept_start_day
    assert "✓ quality_alert_on_time" in capsys.readouterr().out


def test_mlflow_run_and_the_lab_specific_registered_model(lab: LabResult) -> None:
    import mlflow

    run_ = mlflow.get_run(lab.mlflow["run_id"])
    assert run_.data.metrics["claim.no_request_lost.passed"] == 1.0
    assert run_.data.params["registered_model"] == "churn-model-monitoring-test"
    champion = mlflow.MlflowClient().get_model_version_by_alias(
        "churn-model-monitoring-test", "champion"
    )
    assert str(champion.version) == run_.data.params["model_version"]


def test_rerunning_the_job_is_idempotent_and_retrains_only_once(lab_run, tmp_path) -> None:
    """The flow's wiring over the lab's files: a re-run writes no duplicate alert and starts
    no second retraining; a fresh alert log sees the incident as new."""
    lab, out, _ = lab_run
    day = measured(lab, "quality_alert_on_time")["first_quality_alert_day"]
    job = MonitorJob(
        prediction_log=out / "predictions.sqlite",
        outcomes=out / "outcomes.csv",
        reference=out / "reference.csv",
        alert_log=tmp_path / "alerts.jsonl",
        rules=SMALL.rules(),
        days=(day,),
    )
    shutil.copy(out / "alerts.jsonl", job.alert_log)
    before = job.alert_log.read_text()
    hook: list[Alert] = []
    reports = run_monitor_job(job, on_quality_alert=hook.append)
    # drift was already firing the day before; the quality incident starts today …
    assert [(a.kind, a.new) for a in reports[0].alerts] == [("drift", False), ("quality", True)]
    # … but both are already in the log: nothing written twice, no second retraining
    assert job.alert_log.read_text() == before and hook == []

    fresh = replace(job, alert_log=tmp_path / "fresh.jsonl")
    started: list[dict] = []
    steps_hook: list[Alert] = []
    run_monitor_job(
        replace(fresh, retrain_deployment="retrain/retrain"),
        on_quality_alert=steps_hook.append,
        steps=_fake_retrain_steps(started),
    )
    assert [a.kind for a in steps_hook] == ["quality"]
    assert started == [{"name": "retrain/retrain", "parameters": {}, "timeout": 0}]
    assert len(read_alerts(fresh.alert_log)) == 2


def _fake_retrain_steps(started: list[dict]):
    from labs.monitoring.monitor import MonitorSteps

    def fake_run(name: str, parameters: dict, timeout: int, tags: list[str]) -> None:
        started.append({"name": name, "parameters": parameters, "timeout": timeout})

    return MonitorSteps(
        request_retraining=lambda alert, deployment: retrain_trigger(deployment, run=fake_run)(
            alert
        )
    )


# --- the daily job on its own: nothing injected → nothing flagged; labels are never early -------


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
    assert reports[-1].rolling["rows"] == 3 * 200  # days 1-3: only labels that have arrived


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


def test_alert_log_is_append_only_and_idempotent(tmp_path) -> None:
    a = Alert("quality", 23, 20, "roc_auc", 0.51, 0.70, "roc_auc 0.510 < 0.700")
    path = tmp_path / "alerts.jsonl"
    assert append_alerts(path, [a]) == [a]
    assert append_alerts(path, [a, replace(a, day=24)]) == [replace(a, day=24)]
    assert read_alerts(path) == [a, replace(a, day=24)]


def test_flow_wraps_the_same_steps_and_validates_parameters() -> None:
    from prefect.exceptions import ParameterTypeError

    from labs.monitoring import monitor as job
    from labs.monitoring.flow import monitor, task_steps

    steps = task_steps()
    assert monitor.name == "monitor"
    assert steps.check_day.fn is job.check_day and steps.publish.fn is job.publish
    assert steps.load_inputs.retries == 3 and steps.check_day.retries == 0
    assert monitor.validate_parameters({"days": [12], "alpha": 0.01})["days"] == [12]
    with pytest.raises(ParameterTypeError, match="alpha"):
        monitor.validate_parameters({"alpha": 2.0})


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
