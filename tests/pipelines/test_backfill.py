"""The monitoring backfill on Dask gives the sequential job's day reports, alerts included,
on one worker or two."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import pytest

from labs.monitoring.lab import run
from labs.monitoring.steps import MonitorJob, rules_from_params, run_monitor_job
from pipelines.backfill import (
    chunks,
    comparable,
    dask_runner,
    monitor_backfill,
    score_batch,
    score_chunk,
)
from tests.labs.test_monitoring import SMALL as MONITORING_SMALL

pytestmark = [pytest.mark.integration, pytest.mark.slow]

# the monitoring lab's shortened story, under a registered model of its own
SMALL = replace(MONITORING_SMALL, registered_model="churn-model-backfill-test")


def test_backfill_on_dask_equals_the_sequential_job(
    tmp_path: Path, prefect_harness, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("DASK_SCHEDULER_ADDRESS", raising=False)
    out = tmp_path / "monitoring"
    out.mkdir()
    run(SMALL, out)
    files = {
        "prediction_log": str(out / "predictions.sqlite"),
        "outcomes": str(out / "outcomes.csv"),
        "reference": str(out / "reference.csv"),
    }
    job = MonitorJob(
        prediction_log=Path(files["prediction_log"]),
        outcomes=Path(files["outcomes"]),
        reference=Path(files["reference"]),
        alert_log=tmp_path / "no-alerts.jsonl",
        rules=rules_from_params(),
        days=None,
        server_url=None,
        retrain_deployment=None,
    )
    sequential = [comparable(r) for r in run_monitor_job(job)]
    backfill = monitor_backfill.with_options(task_runner=dask_runner(2))(**files)
    # as JSON: a day without labels has NaN metrics, and NaN != NaN
    assert json.dumps(backfill["reports"], sort_keys=True) == json.dumps(sequential, sort_keys=True)
    assert [r["day"] for r in backfill["reports"]] == list(range(SMALL.days))
    # the story's alerts are there, decided in order: drift first, then quality, each new once
    kinds = [(a["kind"], a["new"]) for r in backfill["reports"] for a in r["alerts"]]
    assert ("drift", True) in kinds and ("quality", True) in kinds
    assert backfill["summary"]["alerts"]["drift"] > 0


def test_batch_scoring_on_dask_equals_scoring_each_chunk_in_turn(
    repo_root: Path, prefect_harness, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("DASK_SCHEDULER_ADDRESS", raising=False)
    model = str(repo_root / "models" / "churn-model.skops")  # the DVC baseline
    plain = [p for start, size in chunks(7_000, 2_000) for p in score_chunk(model, start, size, 3)]
    scored = score_batch.with_options(task_runner=dask_runner(2))(
        model=model, rows=7_000, chunk_rows=2_000, seed=3
    )
    assert chunks(7_000, 2_000) == [(0, 2000), (2000, 2000), (4000, 2000), (6000, 1000)]
    assert scored == plain and len(scored) == 7_000
    assert 0.05 < sum(scored) / len(scored) < 0.6  # churn probabilities, not zeros
