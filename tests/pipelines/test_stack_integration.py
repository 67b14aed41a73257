"""The team stack, for real: PostgreSQL, an MLflow server and a Prefect server on it, a process
work pool with two workers (``make stack-up``). The labs and flows move onto it by two
environment variables; what they did is then read back from PostgreSQL and the artifact
store — queried, not assumed — and ``stack-down`` must leave no process behind.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import pytest
import yaml

from labs.common.processes import log_tail
from pipelines.stack import (
    POOL,
    STOP_ORDER,
    WORKERS,
    client_env,
    online_workers,
    start,
    status,
    stop,
)

pytestmark = [pytest.mark.integration, pytest.mark.slow, pytest.mark.stack]

RETRAIN_MODEL = "churn-model-stack-test"
MONITORING_SMALL = {
    "train_rows": 1500,
    "reference_rows": 1000,
    "days": 12,
    "rows_per_day": 200,
    "covariate_start_day": 4,
    "concept_start_day": 8,
    "label_delay_days": 2,
    "bad_input_day": 1,
    "registered_model": "churn-model-monitoring-stack-test",
}


def _query(url: str, sql: str, *args: Any) -> list[tuple]:
    import psycopg

    # the Prefect URL names SQLAlchemy's asyncpg driver; psycopg wants the plain scheme
    with psycopg.connect(url.replace("postgresql+asyncpg://", "postgresql://")) as conn:
        return conn.execute(sql, args).fetchall()


def _stack_processes(root: Path, pgids: set[int]) -> list[str]:
    """Every live process in one of the stack's process groups or naming its folder."""
    found = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            stat = (proc / "stat").read_text()
            cmdline = (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode()
        except OSError:
            continue
        fields = stat.rsplit(")", 1)[1].split()
        state, pgid = fields[0], int(fields[2])
        if state == "Z":
            continue
        if pgid in pgids or str(root) in cmdline:
            found.append(f"{proc.name} (pgid {pgid}): {cmdline[:120]}")
    return found


@pytest.fixture(scope="module")
def stack(repo_root: Path):
    """The stack in a temporary folder, with a sandbox project root (``LABS_ROOT``) for the
    labs and the workers' flow runs; stopped at the end, also when a test fails."""
    # Not under pytest's basetemp: as root, PostgreSQL runs as ``nobody`` and must traverse the
    # folders above its data dir, and every new pytest session on this machine (other
    # checkouts too) resets /tmp/pytest-of-<user> to 0700.
    base = Path(tempfile.mkdtemp(prefix="labs-team-stack-"))
    sandbox = base / "labs-root"
    (sandbox / "data").mkdir(parents=True)
    (sandbox / "data" / "prepared").symlink_to(repo_root / "data" / "prepared")
    # the monitoring lab's shortened story (tests/labs/test_monitoring.py): 12 days, not 30
    params = yaml.safe_load((repo_root / "params.yaml").read_text())
    params["monitoring"].update(MONITORING_SMALL)
    (sandbox / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    root = base / "state"
    started = time.perf_counter()
    try:
        state = start(root, extra_env={"LABS_ROOT": str(sandbox)}, timeout=180)
        state["up_s"] = time.perf_counter() - started
        yield {"state": state, "root": root, "sandbox": sandbox}
    finally:
        stop(root)
        shutil.rmtree(base, ignore_errors=True)


def _env(stack: dict, **extra: str) -> dict[str, str]:
    """A client's environment: the stack's two URLs are the only change."""
    return {
        **os.environ,
        **client_env(stack["state"]),
        "LABS_ROOT": str(stack["sandbox"]),
        "PREFECT_HOME": str(stack["root"] / "client-prefect"),
        **extra,
    }


def test_the_stack_runs_on_postgresql_with_two_workers(stack) -> None:
    state = stack["state"]
    report = status(stack["root"])
    assert all(part["alive"] for name, part in report.items() if name != "pool"), report
    assert report["mlflow"]["answers"] and report["prefect"]["answers"]
    assert online_workers(state) == [f"worker-{i}" for i in range(1, WORKERS + 1)]
    # Both servers keep their state in PostgreSQL: MLflow's schema and Prefect's deployments
    # on the pool, read back from the database itself.
    mlflow_db, prefect_db = state["databases"]["mlflow"], state["databases"]["prefect"]
    (version,) = _query(mlflow_db, "SHOW server_version")[0]
    assert int(version.split(".")[0]) >= 14
    assert _query(mlflow_db, "SELECT count(*) FROM alembic_version")[0][0] == 1
    deployments = _query(
        prefect_db,
        "SELECT f.name || '/' || d.name FROM deployment d JOIN flow f ON f.id = d.flow_id "
        "JOIN work_queue q ON q.id = d.work_queue_id JOIN work_pool p ON p.id = q.work_pool_id "
        "WHERE p.name = %s AND p.type = 'process' "
        "ORDER BY 1",
        POOL,
    )
    assert [d for (d,) in deployments] == ["monitor/monitor", "retrain/retrain"]


def test_the_drift_lab_logs_to_the_server_by_configuration_only(stack) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "labs.drift"],
        env=_env(stack),
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    summary = json.loads((stack["sandbox"] / "reports" / "drift" / "summary.json").read_text())
    run_id = summary["mlflow"]["run_id"]
    db = stack["state"]["databases"]["mlflow"]
    rows = _query(
        db,
        "SELECT r.status, r.artifact_uri, e.name FROM runs r JOIN experiments e "
        "USING (experiment_id) WHERE r.run_uuid = %s",
        run_id,
    )
    assert len(rows) == 1
    status_, artifact_uri, experiment = rows[0]
    assert (status_, experiment) == ("FINISHED", "lab-drift")
    # proxied artifacts: the client logged through the server, which wrote to its destination
    assert artifact_uri.startswith("mlflow-artifacts:/")
    children = _query(
        db,
        "SELECT n.value FROM tags p JOIN tags n ON n.run_uuid = p.run_uuid AND "
        "n.key = 'mlflow.runName' WHERE p.key = 'mlflow.parentRunId' AND p.value = %s "
        "ORDER BY 1",
        run_id,
    )
    assert [name for (name,) in children] == ["concept", "covariate", "no_drift", "prior"]
    metrics = _query(db, "SELECT count(DISTINCT key) FROM metrics WHERE run_uuid = %s", run_id)
    assert metrics[0][0] > 0
    stored = Path(stack["state"]["artifacts"]) / artifact_uri.removeprefix("mlflow-artifacts:/")
    stored_names = {p.name for p in stored.rglob("*") if p.is_file()}
    assert {Path(a).name for a in summary["artifacts"]} & stored_names


# Three retrain runs at once on the two workers, into one registered model: two identical
# (same data, seed and noise: the same model bytes) and one trained on noisier labels.
CONCURRENT_RUNS = [{"label_noise": 0.0}, {"label_noise": 0.0}, {"label_noise": 0.2}]
START_RUNS = """
import json, sys
from prefect.deployments import run_deployment
ids = [str(run_deployment("retrain/retrain", parameters=p, timeout=0).id)
       for p in json.loads(sys.argv[1])]
print(json.dumps(ids))
"""


def test_concurrent_retrain_runs_on_the_pool_keep_the_registry_invariants(stack) -> None:
    state = stack["state"]
    params = [{**p, "force": True, "model_name": RETRAIN_MODEL} for p in CONCURRENT_RUNS]
    started = subprocess.run(
        [sys.executable, "-c", START_RUNS, json.dumps(params)],
        env=_env(stack),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert started.returncode == 0, started.stderr[-2000:]
    run_ids = json.loads(started.stdout.strip().splitlines()[-1])
    prefect_db = state["databases"]["prefect"]
    deadline = time.monotonic() + 240
    while True:
        states = dict(
            _query(
                prefect_db,
                "SELECT id::text, state_type FROM flow_run WHERE id::text = ANY(%s)",
                run_ids,
            )
        )
        if all(states.get(i) in ("COMPLETED", "FAILED", "CRASHED") for i in run_ids):
            break
        assert time.monotonic() < deadline, f"retrain runs not done: {states}"
        assert all(part["alive"] for part in status(stack["root"]).values() if "alive" in part)
        time.sleep(1)
    logs = {f"worker-{i}": Path(state[f"worker-{i}"]["log"]).read_text() for i in (1, 2)}
    assert set(states.values()) == {"COMPLETED"}, (states, [log[-3000:] for log in logs.values()])
    # Each run ran exactly once, on one of the pool's workers. Both workers may *see* a run
    # and log "submitting" it; the server accepts one Pending proposal and aborts the other
    # (the winner then sets Submitting, also of type PENDING, before the run goes Running).
    # So ask the server what happened, not the logs: the states it recorded per run, and the
    # labels the accepted worker gave the run.
    recorded = _query(
        prefect_db,
        "SELECT r.id::text, r.labels->>'prefect.worker.name', s.name, count(*) "
        "FROM flow_run r JOIN flow_run_state s ON s.flow_run_id = r.id "
        "WHERE r.id::text = ANY(%s) AND s.name IN ('Pending', 'Running') "
        "GROUP BY 1, 2, 3",
        run_ids,
    )
    ran = {(run, kind): (worker, n) for run, worker, kind, n in recorded}
    workers = {f"worker-{i}" for i in range(1, WORKERS + 1)}
    for run in run_ids:
        for kind in ("Pending", "Running"):
            worker, n = ran.get((run, kind), (None, 0))
            assert n == 1 and worker in workers, (run, kind, ran)
    # and they did run at the same time: every run started before any of them ended
    (last_start, first_end) = _query(
        prefect_db,
        "SELECT max(start_time), min(end_time) FROM flow_run WHERE id::text = ANY(%s)",
        run_ids,
    )[0]
    assert last_start < first_end

    db = state["databases"]["mlflow"]
    versions = _query(
        db,
        "SELECT mv.version, mv.source, t.value FROM model_versions mv JOIN model_version_tags t "
        "ON t.name = mv.name AND t.version = mv.version AND t.key = 'artifact_sha256' "
        "WHERE mv.name = %s ORDER BY mv.version",
        RETRAIN_MODEL,
    )
    shas = [sha for (_, _, sha) in versions]
    # no duplicate version for one model: the two identical runs found one version
    assert len(shas) == len(set(shas)) == 2, versions
    aliases = dict(
        _query(
            db, "SELECT alias, version FROM registered_model_aliases WHERE name = %s", RETRAIN_MODEL
        )
    )
    champion = aliases["champion"]  # exactly one: (name, alias) is the table's key
    tags = dict(
        _query(
            db,
            "SELECT key, value FROM model_version_tags WHERE name = %s AND version = %s",
            RETRAIN_MODEL,
            str(champion),
        )
    )
    # consistent previous: the alias names exactly the version the champion's tag says it
    # replaced, and never the champion itself
    if "previous_champion" in tags:
        assert str(aliases.get("previous")) == tags["previous_champion"] != str(champion)
    else:
        assert "previous" not in aliases
    # The champion's bytes are in the artifact store, and they are the bytes whose sha256 the
    # registry recorded.
    source, sha = next((src, sha) for (v, src, sha) in versions if v == champion)
    (location,) = _query(
        db,
        "SELECT artifact_location FROM logged_models WHERE model_id = %s",
        source.removeprefix("models:/"),
    )[0]
    assert location.startswith("mlflow-artifacts:/")
    folder = Path(state["artifacts"]) / location.removeprefix("mlflow-artifacts:/")
    skops_files = list(folder.rglob("*.skops"))
    assert len(skops_files) == 1
    assert hashlib.sha256(skops_files[0].read_bytes()).hexdigest() == sha
    audit = stack["sandbox"] / "reports" / "retraining" / "audit.jsonl"
    moves = [json.loads(line) for line in audit.read_text().splitlines()]
    promotions = [
        (m["from_version"], m["to_version"])
        for m in moves
        if m["model"] == RETRAIN_MODEL and m["alias"] == "champion" and m["action"] == "promote"
    ]
    print(f"concurrent retrains: {states}; versions {versions}; aliases {aliases}")
    print(f"champion moves (from, to), in order: {promotions}")
    # No lost promotion: each move starts where the one before it ended, or repeats that very
    # move (the two identical runs share one version). Promotion is a compare-and-set under
    # the registry's lock (a file lock: the stack's workers share this machine); two
    # *different* versions moved from one base would mean that lock failed.
    assert promotions and promotions[0][0] is None and promotions[-1][1] == str(champion)
    for before, after in zip(promotions, promotions[1:], strict=False):
        assert after[0] == before[1] or after == before, promotions


def test_the_monitoring_lab_and_the_monitor_deployment_run_on_the_stack(stack) -> None:
    state = stack["state"]
    lab = subprocess.run(
        [sys.executable, "-m", "labs.monitoring"],
        env=_env(stack),
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert lab.returncode == 0, lab.stdout[-2000:] + lab.stderr[-2000:]
    summary = json.loads((stack["sandbox"] / "reports" / "monitoring" / "summary.json").read_text())
    db = state["databases"]["mlflow"]
    model = MONITORING_SMALL["registered_model"]
    (run_status, param_version) = _query(
        db,
        "SELECT r.status, p.value FROM runs r JOIN params p ON p.run_uuid = r.run_uuid "
        "AND p.key = 'model_version' WHERE r.run_uuid = %s",
        summary["mlflow"]["run_id"],
    )[0]
    champion = _query(
        db,
        "SELECT version FROM registered_model_aliases WHERE name = %s AND alias = 'champion'",
        model,
    )
    assert run_status == "FINISHED" and champion == [(int(param_version),)]

    # The daily job over the lab's prediction log, as a deployment run on the pool.
    job = subprocess.run(
        [sys.executable, "-m", "prefect", "deployment", "run", "monitor/monitor"]
        + ["--watch", "--watch-timeout", "240"],
        env=_env(stack),
        capture_output=True,
        text=True,
        timeout=300,
    )
    logs = "\n".join(log_tail(Path(state[f"worker-{i}"]["log"]), 40) for i in (1, 2))
    assert job.returncode == 0, job.stdout[-2000:] + job.stderr[-2000:] + logs
    prefect_db = state["databases"]["prefect"]
    (flow_run_id, run_state) = _query(
        prefect_db,
        "SELECT fr.id, fr.state_type FROM flow_run fr JOIN deployment d "
        "ON d.id = fr.deployment_id WHERE d.name = 'monitor'",
    )[0]
    days_checked = _query(
        prefect_db,
        "SELECT count(*) FROM task_run WHERE flow_run_id = %s AND name LIKE 'check_day%%' "
        "AND state_type = 'COMPLETED'",
        flow_run_id,
    )[0][0]
    assert run_state == "COMPLETED" and days_checked == MONITORING_SMALL["days"]


BACKFILL = """
import json
from pipelines.backfill import monitor_backfill, dask_runner
print(json.dumps(monitor_backfill.with_options(task_runner=dask_runner())()["reports"]))
"""


def test_the_backfill_fans_out_on_the_stacks_dask_cluster(
    stack, monkeypatch: pytest.MonkeyPatch
) -> None:
    """After the monitoring lab (above): its days, measured on the stack's Dask workers through
    the stack's Prefect server, equal the plain sequential job's."""
    from distributed import Client

    from labs.monitoring.steps import MonitorJob, rules_from_params, run_monitor_job
    from pipelines.backfill import comparable

    state, lab_dir = stack["state"], stack["sandbox"] / "reports" / "monitoring"
    with Client(state["dask-scheduler"]["address"], timeout=10) as client:
        assert len(client.scheduler_info()["workers"]) == WORKERS
        before = client.run_on_scheduler(lambda dask_scheduler: dask_scheduler.transition_counter)
        done = subprocess.run(
            [sys.executable, "-c", BACKFILL],
            env=_env(stack),
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert done.returncode == 0, done.stderr[-3000:]
        after = client.run_on_scheduler(lambda dask_scheduler: dask_scheduler.transition_counter)
    # one task per day went through the cluster's scheduler (several transitions each)
    assert after - before >= 3 * MONITORING_SMALL["days"]
    backfill = json.loads(done.stdout.strip().splitlines()[-1])
    monkeypatch.setenv("LABS_ROOT", str(stack["sandbox"]))  # its params.yaml: the same rules
    job = MonitorJob(
        prediction_log=lab_dir / "predictions.sqlite",
        outcomes=lab_dir / "outcomes.csv",
        reference=lab_dir / "reference.csv",
        alert_log=stack["root"] / "no-alerts.jsonl",
        rules=rules_from_params(),
        days=None,
        server_url=None,
        retrain_deployment=None,
    )
    sequential = [comparable(r) for r in run_monitor_job(job)]
    # as JSON: a day without labels has NaN metrics, and NaN != NaN
    assert json.dumps(backfill, sort_keys=True) == json.dumps(sequential, sort_keys=True)
    task_runs = _query(
        state["databases"]["prefect"],
        "SELECT count(*) FROM task_run t JOIN flow_run f ON f.id = t.flow_run_id "
        "JOIN flow ON flow.id = f.flow_id WHERE flow.name = 'monitor-backfill' "
        "AND t.name LIKE 'measure_day%%' AND t.state_type = 'COMPLETED'",
    )[0][0]
    assert task_runs == MONITORING_SMALL["days"]


SCORE = """
import json, sys
from pipelines.backfill import score_batch, dask_runner
model = sys.argv[1]
print(json.dumps(score_batch.with_options(task_runner=dask_runner())(model=model, rows=20000)))
"""


def test_batch_scoring_of_the_champion_fans_out_on_the_stacks_dask_cluster(
    stack, monkeypatch: pytest.MonkeyPatch
) -> None:
    """After the concurrent retrains (above): the registry's champion, loaded by the Dask
    workers from the MLflow server (sha256 verified), scores a batch in 4 chunk tasks."""
    from pipelines.backfill import chunks, score_chunk

    model = f"models:/{RETRAIN_MODEL}@champion"
    done = subprocess.run(
        [sys.executable, "-c", SCORE, model],
        env=_env(stack),
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    scored = json.loads(done.stdout.strip().splitlines()[-1])
    monkeypatch.setenv("MLFLOW_TRACKING_URI", stack["state"]["mlflow"]["url"])
    plain = [p for start, n in chunks(20_000, 5_000) for p in score_chunk(model, start, n, 0)]
    assert scored == plain and len(scored) == 20_000
    task_runs = _query(
        stack["state"]["databases"]["prefect"],
        "SELECT count(*) FROM task_run WHERE name LIKE 'score_chunk%%' "
        "AND state_type = 'COMPLETED'",
    )[0][0]
    assert task_runs == 4


def test_stack_down_leaves_no_process_behind(stack) -> None:
    root = stack["root"]
    state = stack["state"]
    names = [*STOP_ORDER]
    pgids = {state[name]["pid"] for name in names}
    before = _stack_processes(root, pgids)
    assert len(before) >= len(names)  # postgres and its backends, servers, workers
    assert stop(root) == names
    assert _stack_processes(root, pgids) == []
    assert status(root) == {} and stop(root) == []
