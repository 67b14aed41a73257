"""The ``retrain`` flow under a real (temporary) Prefect API: every branch decided by numbers."""

from __future__ import annotations

import json
import uuid
from pathlib import Path

import mlflow
import pytest

from labs.common.data import Incident, make_churn_data
from labs.common.registry import read_audit_log
from labs.common.schema import InvalidBatchError
from pipelines import retrain as flow_module
from pipelines.retrain import RetrainConfig, retrain, run_retraining


def fresh_model_name() -> str:
    return f"test-retrain-{uuid.uuid4().hex[:8]}"


def versions(name: str) -> list[str]:
    client = mlflow.MlflowClient()
    return sorted(str(v.version) for v in client.search_model_versions(f"name='{name}'"))


def alias(name: str, which: str = "champion") -> str | None:
    aliases = mlflow.MlflowClient().get_registered_model(name).aliases
    return None if which not in aliases else str(aliases[which])


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
    result = retrain(month=3, model_name=champion)
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


def test_covariate_drift_is_a_trigger(
    prefect_harness, champion: str, sandbox_root, tmp_path
) -> None:
    batch = make_churn_data(
        3000, seed=5, covariate_shift={"monthly_charges": 25.0, "age": 12.0, "tenure_months": 15.0}
    )
    path = tmp_path / "shifted.csv"
    batch.to_csv(path, index=False)
    result = retrain(batch_path=str(path), model_name=champion)
    drift = [r for r in result["reasons"] if r.startswith("drift:")]
    assert drift and result["decision"]["drift_share"] >= 0.25
    assert result["challenger_version"] is not None  # a challenger was trained and scored


def test_no_trigger_no_training(prefect_harness, champion: str) -> None:
    before = versions(champion)
    result = retrain(month=2, model_name=champion)
    assert result["action"] == "skipped"
    assert result["decision"]["drift_share"] < 0.25
    assert result["decision"]["champion_roc_auc_on_batch"] > 0.75
    assert result["challenger_version"] is None and versions(champion) == before


def test_a_worse_challenger_is_not_promoted(prefect_harness, champion: str) -> None:
    result = retrain(month=2, force=True, label_noise=0.45, model_name=champion)
    assert result["action"] == "kept"
    assert result["challenger_score"] < result["champion_score"] + result["margin"]
    assert alias(champion) == "1"  # unchanged
    assert result["challenger_version"] == "2" and alias(champion, "challenger") == "2"


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

    monkeypatch.setattr(flow_module, "train_model", broken)
    state = retrain(month=3, model_name=champion, return_state=True)
    assert state.is_failed()
    assert alias(champion) == "1" and versions(champion) == ["1"]  # nothing half-registered
    assert "challenger" not in mlflow.MlflowClient().get_registered_model(champion).aliases
    runs = mlflow.search_runs(
        experiment_names=["retraining"], filter_string="tags.error LIKE '%node lost%'"
    )
    assert len(runs) == 1 and runs.iloc[0]["status"] == "FAILED"


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
    with pytest.raises(ValueError, match=r"holdout_fraction=0\.99"):
        RetrainConfig.from_params(holdout_fraction=0.99)
    with pytest.raises(FileNotFoundError, match="does not exist"):
        run_retraining(
            RetrainConfig.from_params(
                batch_path="/nonexistent/batch.csv", model_name=fresh_model_name()
            )
        )
