"""The ``retrain`` flow under a real (temporary) Prefect API: every branch decided by numbers."""

from __future__ import annotations

import json
import uuid
from pathlib import Path

import mlflow
import pytest

from labs.common.data import Incident, make_churn_data
from labs.common.errors import Refusal
from labs.common.registry import read_audit_log
from labs.common.schema import InvalidBatchError
from labs.retraining import steps as steps_module
from labs.retraining.steps import RetrainConfig, run_retraining
from pipelines.retrain import ARTIFACT_KEY, retrain


def fresh_model_name() -> str:
    return f"test-retrain-{uuid.uuid4().hex[:8]}"


def versions(name: str) -> list[str]:
    client = mlflow.MlflowClient()
    return sorted(str(v.version) for v in client.search_model_versions(f"name='{name}'"))


def alias(name: str, which: str = "champion") -> str | None:
    aliases = mlflow.MlflowClient().get_registered_model(name).aliases
    return None if which not in aliases else str(aliases[which])


def published(flow_run_id) -> tuple[list[str], list]:
    """What a flow run published: its log messages and its artifacts (from the Prefect API)."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import (
        ArtifactFilter,
        ArtifactFilterFlowRunId,
        LogFilter,
        LogFilterFlowRunId,
    )
    from prefect.logging.handlers import APILogWorker

    APILogWorker.drain_all(timeout=10)  # logs are shipped in the background
    with get_client(sync_client=True) as client:
        logs = client.read_logs(LogFilter(flow_run_id=LogFilterFlowRunId(any_=[flow_run_id])))
        artifacts = client.read_artifacts(
            artifact_filter=ArtifactFilter(flow_run_id=ArtifactFilterFlowRunId(any_=[flow_run_id]))
        )
    return [log.message for log in logs], artifacts


def table_row(markdown: str, first_cell: str) -> list[str]:
    """The cells of the Markdown table row that starts with ``first_cell``."""
    for line in markdown.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if cells[0] == first_cell:
            return cells
    raise AssertionError(f"no row {first_cell!r} in:\n{markdown}")


@pytest.fixture
def champion(sandbox_root: Path) -> str:
    """A model whose champion was trained on month 2 (plain steps: fast, no Prefect)."""
    name = fresh_model_name()
    outcome = run_retraining(RetrainConfig.from_params(month=2, model_name=name))
    assert outcome.action == "promoted" and alias(name) == "1"
    return name


def test_concept_drift_triggers_retrain_and_promotes(
    prefect_harness, champion: str, sandbox_root
) -> None:
    state = retrain(month=3, model_name=champion, return_state=True)
    result = state.result()
    assert result["action"] == "promoted"
    assert any(r.startswith("quality: champion ROC-AUC") for r in result["reasons"])
    assert result["challenger_score"] >= result["champion_score"] + result["margin"]
    assert result["challenger_score"] >= result["absolute_floor"]
    assert result["champion_score"] < 0.5  # the old rules now rank customers worse than chance
    assert alias(champion) == result["challenger_version"] == "2"
    assert alias(champion, "previous") == "1"
    moves = read_audit_log(sandbox_root / "reports" / "retraining" / "audit.jsonl")
    assert [(m.alias, m.action, m.from_version, m.to_version) for m in moves][-4:] == [
        ("challenger", "set", None, "2"),
        ("champion", "promote", "1", "2"),
        ("challenger", "retire", "2", None),
        ("previous", "set", None, "1"),
    ]
    run = mlflow.get_run(result["mlflow_run_id"])
    assert run.info.status == "FINISHED" and run.data.tags["action"] == "promoted"
    assert run.data.metrics["challenger_score"] == pytest.approx(result["challenger_score"])

    # The decision is published where an operator looks: the run's logs and an artifact.
    champion_auc, challenger_auc = result["champion_score"], result["challenger_score"]
    messages, artifacts = published(state.state_details.flow_run_id)
    assert (
        f"promoted: champion v2 (holdout ROC-AUC champion {champion_auc:.3f}, "
        f"challenger {challenger_auc:.3f}; margin 0.01, floor 0.7)"
    ) in messages
    (artifact,) = artifacts
    assert artifact.key == ARTIFACT_KEY and artifact.type == "markdown"
    assert "Retraining decision: **promoted**" in artifact.data
    assert table_row(artifact.data, "champion") == ["champion", "1", f"{champion_auc:.3f}"]
    assert table_row(artifact.data, "challenger") == ["challenger", "2", f"{challenger_auc:.3f}"]
    assert "margin **0.01**" in artifact.data and "floor **0.7**" in artifact.data


def test_covariate_drift_is_a_trigger(
    prefect_harness, champion: str, sandbox_root, tmp_path
) -> None:
    batch = make_churn_data(
        3000, seed=5, covariate_shift={"monthly_charges": 25.0, "age": 12.0, "tenure_months": 15.0}
    )
    path = tmp_path / "shifted.csv"
    batch.to_csv(path, index=False)
    result = retrain(batch_path=str(path), model_name=champion)
    shifted = ["age", "monthly_charges", "tenure_months"]
    assert sorted(result["decision"]["drifted_features"]) == shifted
    assert result["decision"]["drift_share"] == pytest.approx(3 / 7)
    assert result["reasons"][0] == (
        "drift: 0.43 of features drifted (tenure_months, monthly_charges, age) >= 0.25"
    )
    # A challenger was trained, registered and scored on the same holdout as the champion.
    assert result["challenger_version"] == "2" and versions(champion) == ["1", "2"]
    assert 0.5 < result["champion_score"] <= 1 and 0.5 < result["challenger_score"] <= 1


def test_no_trigger_no_training(prefect_harness, champion: str) -> None:
    before = versions(champion)
    result = retrain(month=2, model_name=champion)
    assert result["action"] == "skipped"
    assert result["decision"]["drift_share"] < 0.25
    assert result["decision"]["champion_roc_auc_on_batch"] > 0.75
    assert result["challenger_version"] is None and versions(champion) == before


def test_a_worse_challenger_is_not_promoted(prefect_harness, champion: str) -> None:
    state = retrain(month=2, force=True, label_noise=0.45, model_name=champion, return_state=True)
    result = state.result()
    assert result["action"] == "kept"
    assert result["challenger_score"] < result["champion_score"] + result["margin"]
    assert alias(champion) == "1"  # unchanged
    assert result["challenger_version"] == "2" and alias(champion, "challenger") == "2"
    messages, (artifact,) = published(state.state_details.flow_run_id)
    assert any(m.startswith("kept: champion v1 (holdout ROC-AUC") for m in messages)
    assert "Retraining decision: **kept**" in artifact.data
    assert "does not beat champion" in artifact.data


def test_an_invalid_batch_fails_the_run_and_is_quarantined(
    prefect_harness, champion: str, sandbox_root: Path, tmp_path: Path
) -> None:
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    bad = make_churn_data(500, seed=3, incidents=[Incident("unit_change", "monthly_charges")])
    path = inbox / "march.csv"
    bad.to_csv(path, index=False)
    state = retrain(batch_path=str(path), model_name=champion, return_state=True)
    assert state.is_failed()
    with pytest.raises(InvalidBatchError, match=r"monthly_charges: \d+ values fail in_range"):
        state.result()
    assert not path.exists()  # moved out of the inbox …
    kept = list((sandbox_root / "data" / "quarantine").glob("march-*.csv"))
    assert len(kept) == 1  # … into quarantine, whole
    assert len(kept[0].read_text().splitlines()) == 501
    reason = json.loads(kept[0].with_suffix(".reason.json").read_text())
    assert reason["rows"] == 500 and "monthly_charges" in reason["reasons"][0]
    assert alias(champion) == "1" and versions(champion) == ["1"]


def test_a_failure_mid_training_leaves_the_champion(
    prefect_harness, champion: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(*args, **kwargs):
        raise RuntimeError("node lost during training")

    monkeypatch.setattr(steps_module, "train_model", broken)
    state = retrain(month=3, model_name=champion, return_state=True)
    assert state.is_failed()
    assert alias(champion) == "1" and versions(champion) == ["1"]  # nothing half-registered
    assert "challenger" not in mlflow.MlflowClient().get_registered_model(champion).aliases
    runs = mlflow.search_runs(
        experiment_names=["retraining"], filter_string="tags.error LIKE '%node lost%'"
    )
    assert len(runs) == 1 and runs.iloc[0]["status"] == "FAILED"


def month_3_run_statuses(name: str) -> list[str]:
    runs = mlflow.search_runs(
        experiment_names=["retraining"],
        filter_string=f"params.model_name = '{name}' and attributes.run_name = 'retrain-month-3'",
    )
    return list(runs["status"])


@pytest.mark.parametrize(
    ("error", "status"), [(RuntimeError, "FAILED"), (KeyboardInterrupt, "KILLED")]
)
def test_a_run_stopped_after_registering_ends_failed_or_killed(
    champion: str, error: type[BaseException], status: str
) -> None:
    """Stopped at the last step (an error, or Ctrl-C/SIGTERM as an interrupt): the MLflow run
    ends FAILED or KILLED — not RUNNING, and not FINISHED by the registration before it."""
    seen: list[list[str]] = []

    def stopped(*args) -> None:
        seen.append(month_3_run_statuses(champion))
        raise error("stopped while promoting")

    with pytest.raises(error, match="stopped while promoting"):
        run_retraining(
            RetrainConfig.from_params(month=3, model_name=champion),
            steps_module.Steps(promote_or_keep=stopped),
        )
    assert seen == [["RUNNING"]]
    assert month_3_run_statuses(champion) == [status]
    assert alias(champion) == "1"


def test_parameters_are_validated_by_prefect(prefect_harness) -> None:
    from prefect.exceptions import ParameterTypeError

    with pytest.raises(ParameterTypeError, match="margin"):
        retrain(margin=-0.5)
    with pytest.raises(ParameterTypeError, match="label_noise"):
        retrain(label_noise=0.9)


def test_registration_is_idempotent(champion: str) -> None:
    config = RetrainConfig.from_params(month=3, model_name=champion)
    first = run_retraining(config)
    again = run_retraining(config)  # the same batch: the same challenger bytes
    assert first.challenger_version == again.challenger_version
    assert again.action == "kept" and versions(champion) == ["1", "2"]


def test_config_is_validated_with_the_knob_named(sandbox_root) -> None:
    with pytest.raises(Refusal, match=r"retraining: .*holdout_fraction=0\.99"):
        RetrainConfig.from_params(holdout_fraction=0.99)
    with pytest.raises(ValueError, match=r"label_noise=0\.9"):
        RetrainConfig.from_params(label_noise=0.9)
    with pytest.raises(FileNotFoundError, match="does not exist"):
        run_retraining(
            RetrainConfig.from_params(
                batch_path="/nonexistent/batch.csv", model_name=fresh_model_name()
            )
        )
