"""MLflow set-up and safe model files: skops only, allowlisted types, reproducible bytes."""

from __future__ import annotations

import contextlib
import os
from pathlib import Path

import mlflow
import numpy as np
import pytest
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import FunctionTransformer

from labs.common.data import make_churn_data
from labs.common.model import TrainParams, evaluate_model, split_xy, train_model
from labs.common.tracking import (
    UntrustedModelError,
    artifact_location,
    dump_model,
    get_or_create_experiment,
    load_model_file,
    load_sklearn_model,
    log_sklearn_model,
    start_run,
    tracking_uri,
)


@pytest.fixture(scope="module")
def frame():
    return make_churn_data(800, seed=3)


def test_tests_use_their_own_store_not_the_users() -> None:
    assert tracking_uri() == os.environ["MLFLOW_TRACKING_URI"]
    assert "labs-tests-" in tracking_uri()


def test_artifacts_live_beside_a_sqlite_store(tmp_path: Path) -> None:
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    assert artifact_location(uri) == (tmp_path / "mlruns").as_uri()
    assert artifact_location("http://127.0.0.1:5000") is None


@pytest.mark.parametrize("model_type", ["logistic_regression", "random_forest"])
def test_model_file_is_reproducible_and_round_trips(tmp_path, frame, model_type) -> None:
    params = TrainParams(model_type=model_type, n_estimators=10)
    sha_a = dump_model(train_model(frame, params), tmp_path / "a.skops")
    sha_b = dump_model(train_model(frame, params), tmp_path / "b.skops")
    assert sha_a == sha_b
    assert (tmp_path / "a.skops").read_bytes() == (tmp_path / "b.skops").read_bytes()
    original = train_model(frame, params)
    loaded = load_model_file(tmp_path / "a.skops")
    x, _ = split_xy(frame)
    np.testing.assert_array_equal(loaded.predict_proba(x), original.predict_proba(x))


def test_a_model_with_an_unsafe_type_is_refused(tmp_path, frame) -> None:
    x, y = split_xy(frame)
    unsafe = Pipeline(
        [("f", FunctionTransformer(os.getcwd)), ("m", train_model(frame, TrainParams()))]
    )
    with pytest.raises(UntrustedModelError, match="not on the allowlist of exact type names"):
        dump_model(unsafe, tmp_path / "unsafe.skops")
    assert not (tmp_path / "unsafe.skops").exists()


def test_log_register_and_load_back_from_the_registry(frame) -> None:
    model = train_model(frame, TrainParams())
    with start_run("test-tracking", "roundtrip", {"C": 1.0}) as run:
        info = log_sklearn_model(model, registered_model_name="test-churn")
    assert info.registered_model_version is not None
    logged = mlflow.get_run(run.info.run_id)
    assert logged.data.params == {"C": "1.0"}
    loaded = load_sklearn_model(f"models:/test-churn/{info.registered_model_version}")
    assert evaluate_model(loaded, frame) == evaluate_model(model, frame)
    experiment = mlflow.get_experiment(get_or_create_experiment("test-tracking"))
    assert experiment.artifact_location == artifact_location()


def test_a_pickled_model_is_never_loaded(frame) -> None:
    import mlflow.sklearn

    with start_run("test-tracking", "pickle"):
        info = mlflow.sklearn.log_model(
            train_model(frame, TrainParams()),
            name="model",
            serialization_format="cloudpickle",
            pip_requirements=["scikit-learn"],
        )
    with pytest.raises(UntrustedModelError, match="cloudpickle"):
        load_sklearn_model(info.model_uri)


def test_lab_experiments_open_in_the_classic_model_view() -> None:
    experiment = mlflow.get_experiment(get_or_create_experiment("test-kind"))
    assert experiment.tags["mlflow.experimentKind"] == "custom_model_development"
    client = mlflow.MlflowClient()
    client.set_experiment_tag(
        experiment.experiment_id, "mlflow.experimentKind", "genai_development"
    )
    get_or_create_experiment("test-kind")
    assert client.get_experiment(experiment.experiment_id).tags["mlflow.experimentKind"] == (
        "custom_model_development"
    )


@pytest.mark.parametrize(
    ("error", "status"),
    [(KeyboardInterrupt, "KILLED"), (RuntimeError, "FAILED"), (None, "FINISHED")],
)
def test_a_run_never_stays_running(error, status) -> None:
    run_id = None
    with pytest.raises(error) if error else contextlib.nullcontext():
        with start_run("test-status", "stops") as run:
            run_id = run.info.run_id
            if error:
                raise error
    assert mlflow.get_run(run_id).info.status == status
    assert mlflow.active_run() is None
