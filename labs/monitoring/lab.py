"""Why monitor a model in production, which metrics do you watch, and how?

A model that passed every offline test still meets a world that moves: the service can slow
down or fail, the inputs can shift, and the relationship it learned can stop holding. This lab
watches all three on a month of simulated production:

- a churn model is trained, registered in MLflow (``champion`` alias, audited) and served over
  HTTP by the project's FastAPI app, which validates every request, logs every prediction to
  SQLite and exposes Prometheus metrics;
- thirty days of customers are replayed through ``POST /predict`` by concurrent clients
  (:mod:`labs.common.replay`): days 0–9 look like the training data, from day 10 a
  **covariate shift** (prices rise, more month-to-month contracts), from day 20 **concept
  drift** on top (a share of customers churn for new reasons); one quiet day an upstream bug
  sends malformed requests;
- a daily job (:mod:`labs.monitoring.steps`) checks each day's batch for data and prediction
  drift, and — three days later, when the churn labels arrive — the model's quality; threshold
  breaches become alerts (a log, ``/metrics``, a retraining request).

Each claim of the answer is measured below, in order; the numbers decide it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from labs.common.catalogue import topic
from labs.common.data import FEATURES, PROBA, TARGET, make_churn_data, make_production_stream
from labs.common.model import TrainParams, split_xy, train_model
from labs.common.replay import VALID, replay
from labs.common.results import LabResult, artifact_path, claim_metrics
from labs.common.serving.predlog import log_counts, remove_log
from labs.common.sidecar import sidecar
from labs.common.tracking import RunRecord, dump_model, log_run_record, warm_up_tracking
from labs.monitoring.alerts import read_alerts
from labs.monitoring.claims import make_claims
from labs.monitoring.dashboard import plot_dashboard
from labs.monitoring.monitor import Alert, DayReport, Monitor, Reference
from labs.monitoring.noise import calibrate_quality_noise
from labs.monitoring.params import MonitoringParams
from labs.monitoring.report import daily_text, story, worst_day_report
from labs.monitoring.steps import MonitorJob, daily_table, run_monitor_job, worst_day
from labs.monitoring.traffic import label_feed, latency_by_day, stream_requests

QUESTION = topic("monitoring").question
EXPERIMENT = "lab-monitoring"


def run(
    params: MonitoringParams,
    out_dir: Path,
    echo: Callable[[str], None] = lambda _: None,
    on_quality_alert: Callable[[Alert], None] | None = None,
    *,
    serving_hook: Callable[[Any], Any] | None = None,
    score_reference: Callable[[Any, pd.DataFrame, MonitoringParams], np.ndarray] | None = None,
    monitor_cls: type[Monitor] = Monitor,
) -> LabResult:
    """Serve, replay the month, monitor it day by day; return the measured claims.

    ``on_quality_alert`` is called once per new quality incident (e.g. to start the retraining
    flow); the lab always records the request and reports it. The parts the claims are about
    can be replaced (the lab's counterfactuals, ``labs/monitoring/counterfactuals.py``):
    ``serving_hook`` wraps the served app (a module-level function: it is imported by name in
    the server process), ``score_reference`` scores the reference batch (default: the served
    model), ``monitor_cls`` runs the daily checks.
    """
    from labs.common.serving.server import serve_in_background

    out_dir.mkdir(parents=True, exist_ok=True)
    log_path, alert_path = out_dir / "predictions.sqlite", out_dir / "alerts.jsonl"
    remove_log(log_path)
    alert_path.unlink(missing_ok=True)
    retrain_requests: list[Alert] = []

    def quality_hook(alert: Alert) -> None:
        retrain_requests.append(alert)
        if on_quality_alert is not None:
            on_quality_alert(alert)

    # --- Setup -----------------------------------------------------------------------------
    # Three slow starts overlap: a sidecar process imports MLflow and registers the model (and
    # logs the run at the end); the server imports its stack and waits for the model's URI
    # on stdin; this process trains the model and builds the month of traffic.
    with (
        sidecar() as side,
        serve_in_background(
            None,
            log_path=log_path,
            server_log=out_dir / "server.log",
            app_hook=None if serving_hook is None else _qualified_name(serving_hook),
        ) as server,
    ):
        side.submit(warm_up_tracking)
        echo("Training the champion; scoring a labelled reference batch ('normal') …")
        model = train_model(make_churn_data(params.train_rows, seed=params.seed), TrainParams())
        reference_batch = make_churn_data(params.reference_rows, seed=params.seed + 1)
        reference_batch[PROBA] = (score_reference or served_model_scores)(
            model, reference_batch, params
        )
        reference = Reference.from_scored(reference_batch)
        # The quality floors, fixed before the month: the day-to-day noise of the model's
        # quality on no-drift days of their own seeds (labs/monitoring/noise.py).
        noise = calibrate_quality_noise(
            model, params.rows_per_day, params.quality_noise_days, params.seed
        )
        rules = params.rules(noise.drops(params.quality_alert_sigmas))
        model_file = out_dir / "champion.skops"
        dump_model(model, model_file)
        registered = side.submit(register_champion, str(model_file), params.registered_model)

        stream = make_production_stream(
            params.days, params.rows_per_day, seed=params.seed + 2, events=params.events()
        )
        requests = stream_requests(stream, params.rows_per_request, params.bad_input_day)
        # The files the monitoring job reads (the inputs of `python -m pipelines.monitor` too):
        # the reference batch and the label feed, joined to the log by request id and row.
        reference_path, outcomes_path = out_dir / "reference.csv", out_dir / "outcomes.csv"
        reference_batch[[*FEATURES, TARGET, PROBA]].to_csv(reference_path, index=False)
        outcomes = label_feed(stream, params.rows_per_request)
        outcomes.to_csv(outcomes_path, index=False)
        import evidently.presets  # noqa: F401  (seconds of import, while the others start)

        model_uri, version = registered.result()
        server.bind(model_uri)
        echo(f"Registered {model_uri} (version {version}); the server loads it …")
        server.wait_ready()

        # --- Claims 1–3: the service. Latency, nothing lost, bad input refused -------------
        # The traffic first, with nothing else running in this process, so the latencies the
        # clients measure are the server's, not this process's own contention.
        echo(
            f"Server ready on {server.url}; {params.clients} clients replay {params.days} days "
            f"({len(stream)} customers, {len(requests)} requests) through POST /predict …"
        )
        traffic = replay(server.url, requests, clients=params.clients, keep_responses=False)
        summary = traffic.summary()
        echo(
            f"Replayed {summary.requests} requests in {summary.wall_s:.1f} s: by status "
            f"{summary.by_status}; {summary.requests - summary.by_tag.get(VALID, 0)} malformed"
        )

        # --- Claims 4–7: the model. Drift early, quality late, quiet days quiet -------------
        # The daily job, day after day, as a nightly batch would: drift on the day's batch,
        # quality on the batch whose labels just arrived, gauges and alerts pushed to /metrics.
        echo("Monitoring day by day (drift: the day's batch; quality: labels arrived today) …")
        job = MonitorJob(
            prediction_log=log_path,
            outcomes=outcomes_path,
            reference=reference_path,
            alert_log=alert_path,
            rules=rules,
            server_url=server.url,
        )
        reports = run_monitor_job(
            job, on_day=_progress(echo), on_quality_alert=quality_hook, monitor_cls=monitor_cls
        )

        # --- Claim 8: one place to look. /metrics agrees with the logs -----------------------
        import httpx

        scrape = httpx.get(f"{server.url}/metrics", timeout=10).text
        server.stop()
        logged = log_counts(log_path)

        alerts = read_alerts(alert_path)
        claims = make_claims(
            params,
            rules=rules,
            noise=noise,
            reference=reference,
            traffic=traffic,
            logged=logged,
            reports=reports,
            alerts=alerts,
            scrape=scrape,
            version=version,
            retrain_requests=retrain_requests,
        )

        # --- What to look at ---------------------------------------------------------------
        table = daily_table(reports).merge(latency_by_day(traffic), on="day", how="left")
        table.to_csv(out_dir / "daily.csv", index=False)
        echo("")
        echo(daily_text(table))
        echo("Evidently report of the worst day, the dashboard …")
        html = worst_day_report(params, reference, log_path, outcomes, worst_day(reports), out_dir)
        dashboard = out_dir / "dashboard.png"
        plot_dashboard(params, rules, table, alerts, reference, dashboard)
        files = [dashboard, html, out_dir / "daily.csv", alert_path]
        echo(f"Logging to MLflow (experiment {EXPERIMENT}) …")
        record = RunRecord(
            name="monitoring-lab",
            params={**asdict(params), "model_uri": model_uri, "model_version": version},
            metrics=claim_metrics(claims),
            artifacts=[str(f) for f in files],
        )
        run_id = side.submit(log_run_record, EXPERIMENT, record).result()

    # --- Interpretation ----------------------------------------------------------------------
    # Serving metrics say whether the *service* is healthy; drift says the *inputs* changed —
    # early and without labels — but not whether the model got worse (the covariate shift
    # alone leaves quality above its floor); only quality on late labels sees concept drift.
    # So you watch all three, with thresholds chosen so that quiet days stay quiet.
    echo("")
    echo(story(params, alerts, retrain_requests))
    return LabResult(
        lab="monitoring",
        question=QUESTION,
        claims=claims,
        artifacts=[artifact_path(f) for f in files],
        mlflow={"experiment": EXPERIMENT, "run_id": run_id},
    )


def register_champion(model_file: str, name: str) -> tuple[str, str]:
    """Find-or-register the model file's bytes as a version of ``name`` and promote it to
    ``champion`` (audited); return (``models:/name@champion``, version). Runs in the sidecar.

    Same seed → same model bytes → the same version, run after run.
    """
    import mlflow

    from labs.common.registration import register_version
    from labs.common.registry import CHAMPION, promote
    from labs.common.tracking import audit_log_path, configure_tracking, load_model_file

    configure_tracking()
    client = mlflow.MlflowClient()
    model = load_model_file(Path(model_file))
    version, _ = register_version(client, name, model, experiment=EXPERIMENT, run_name=CHAMPION)
    promote(
        client,
        name,
        version,
        reason="monitoring lab: the model it serves and watches",
        audit_log=audit_log_path(),
    )
    return f"models:/{name}@{CHAMPION}", version


def served_model_scores(model: Any, batch: pd.DataFrame, params: MonitoringParams) -> np.ndarray:
    """The reference batch's churn scores by the model the server serves."""
    return model.predict_proba(split_xy(batch)[0])[:, 1]


def _qualified_name(function: Callable[..., Any]) -> str:
    """``module:qualname`` of a module-level function (the server process imports it)."""
    return f"{function.__module__}:{function.__qualname__}"


def _progress(echo: Callable[[str], None]) -> Callable[[DayReport], None]:
    """One short line per checked day (the full table is printed at the end)."""

    def on_day(r: DayReport) -> None:
        fired = " ".join(f"{a.kind}{'' if a.new else ' (ongoing)'}" for a in r.alerts)
        echo(f"  day {r.day:2d} checked{': alerts ' + fired if fired else ''}")

    return on_day
