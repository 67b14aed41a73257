"""Lab retraining: four months through the retrain pipeline, each claim from its numbers."""

from __future__ import annotations

import json
import uuid
from pathlib import Path

import mlflow
import pytest

from labs.common.results import LabResult, finish
from labs.retraining.lab import RetrainingLabParams, run


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> LabResult:
    return run(RetrainingLabParams(model_name="test-retraining-lab"), tmp_path_factory.mktemp("rl"))


def m(lab: LabResult, claim: str) -> dict:
    return dict(lab.claim(claim).measured)


def test_normal_month_trains_nothing(lab: LabResult) -> None:
    normal = m(lab, "normal_month_no_retraining")
    assert normal["champion_auc_on_batch"] >= normal["quality_threshold"]
    assert normal["reasons"] == ["no trigger: no drift, quality holds, few new rows"]


def test_concept_drift_triggers_and_a_better_challenger_is_promoted(lab: LabResult) -> None:
    trigger = m(lab, "concept_drift_triggers_retraining")
    assert trigger["champion_auc_on_batch"] < 0.5 < trigger["quality_threshold"]
    promo = m(lab, "better_challenger_promoted")
    assert promo["challenger_score"] - promo["champion_score"] > 0.3
    assert promo["challenger_score"] >= promo["floor"]
    client = mlflow.MlflowClient()
    aliases = client.get_registered_model("test-retraining-lab").aliases
    assert str(aliases["champion"]) == "2" and str(aliases["previous"]) == "1"


def test_a_worse_challenger_is_kept_out(lab: LabResult) -> None:
    kept = m(lab, "worse_challenger_kept")
    assert kept["challenger_score"] < kept["champion_score"]
    assert m(lab, "every_move_audited")["champion_moves"] == 2


def test_contract_summary_plot_and_exit_code(lab: LabResult, tmp_path: Path) -> None:
    assert lab.passed, [c.id for c in lab.claims if not c.passed]
    assert finish(lab, tmp_path) == 0
    data = json.loads((tmp_path / "summary.json").read_text())
    assert data["mlflow"]["experiment"] == "lab-retraining"
    png = next(Path(a) for a in data["artifacts"] if a.endswith(".png"))
    assert png.stat().st_size > 20_000
    run = mlflow.get_run(data["mlflow"]["run_id"])
    assert run.data.metrics["claim.better_challenger_promoted.passed"] == 1.0


def test_bad_params_are_refused() -> None:
    with pytest.raises(ValueError, match="drift_month"):
        RetrainingLabParams(drift_month=2)


def test_the_lab_never_deletes_a_model_it_does_not_own(tmp_path: Path) -> None:
    from labs.common.tracking import configure_tracking

    configure_tracking()
    name = f"someone-elses-model-{uuid.uuid4().hex[:8]}"  # the session store is shared
    mlflow.MlflowClient().create_registered_model(name)
    from labs.common.registry import RegistryError

    with pytest.raises(RegistryError, match="was not created by this lab"):
        run(RetrainingLabParams(model_name=name), tmp_path)
    assert mlflow.MlflowClient().get_registered_model(name).name == name
