"""Lab features: every claim asserted from its numbers, on small, fast parameters, plus the
cases where a claim must not hold (a faithful transform shows no skew, an as-of join no leak)."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from labs.common.catalogue import topic
from labs.common.data import FEATURES, TARGET, Incident, make_churn_data
from labs.common.plots import read_drawing
from labs.common.results import LabResult, finish, read_summary
from labs.features import events
from labs.features.counterfactuals import (
    COUNTERFACTUALS,
    asof_join_nearest,
    calls_in_todays_log,
)
from labs.features.lab import FeaturesParams, measure_point_in_time, run
from labs.features.pipeline import (
    MISTAKES,
    build_feature_pipeline,
    export_feature_spec,
    feature_names,
    handwritten_features,
)

SMALL = FeaturesParams(
    train_rows=1000,
    holdout_rows=800,
)
CLAIMS = [
    "one_fitted_artefact",
    "handwritten_transform_skews",
    "shipped_pipeline_no_skew",
    "naive_join_leaks_future",
    "asof_join_honest",
]


def measured(result: LabResult, claim: str) -> dict:
    return dict(result.claim(claim).measured)


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> LabResult:
    return run(SMALL, tmp_path_factory.mktemp("features"))


@pytest.fixture(scope="module")
def fitted() -> tuple[object, pd.DataFrame]:
    missing = [Incident("missing_values", "monthly_charges", rate=0.1)]
    train = make_churn_data(800, seed=3, incidents=missing)
    batch = make_churn_data(60, seed=4, incidents=missing)
    pipeline = build_feature_pipeline().fit(train[list(FEATURES)], train[TARGET])
    return pipeline, batch


# --- the claims, from their numbers ------------------------------------------------------


def test_one_artefact_takes_raw_columns_and_predicts_what_was_trained(lab: LabResult) -> None:
    m = measured(lab, "one_fitted_artefact")
    assert m["artefact_type"] == "Pipeline" and m["model_file"].endswith(".skops")
    assert m["raw_input_columns"] == m["inputs_expected"] == len(FEATURES) == 7
    # 4 numbers + the ratio + 3 + 4 + 3 one-hot columns
    assert m["model_features"] == 15
    assert m["steps"] == ["numeric", "charges_per_tenure_month", "categorical", "classifier"]
    assert m["loaded_in_another_process"]
    assert m["fresh_process_vs_trained_max_abs_dp"] == 0.0
    assert "raw_rows_refused" not in m
    assert 0.75 < m["holdout_roc_auc"] < 0.9


def test_handwritten_serving_transform_skews(lab: LabResult) -> None:
    m = measured(lab, "handwritten_transform_skews")
    assert m["flipped_share"] >= SMALL.skew_flip_alert
    assert m["flipped_rows"] == round(m["flipped_share"] * SMALL.holdout_rows)
    assert m["max_abs_dp"] > 0.1
    assert m["auc_loss"] >= SMALL.skew_auc_alert
    assert m["roc_auc_offline"] - m["roc_auc_served"] == pytest.approx(m["auc_loss"])
    for mistake in MISTAKES:  # each mistake alone is enough to change predictions
        assert m[f"flipped_share_only_{mistake}"] > 0
        assert m[f"max_abs_dp_only_{mistake}"] > 0.05


def test_shipping_the_fitted_pipeline_removes_the_skew(lab: LabResult) -> None:
    m = measured(lab, "shipped_pipeline_no_skew")
    assert m["serving_process"] and m["requests"] == SMALL.holdout_rows // 50
    assert m["rows_served"] == SMALL.holdout_rows and m["rows_with_feature_skew"] == 0
    assert m["max_abs_feature_diff"] <= 1e-12
    assert m["flipped_rows"] == 0 and m["auc_loss"] == 0.0
    assert m["max_abs_dp"] <= 1e-12  # float rounding between batch sizes, nothing more
    # Negative case: the same hand-written code without the mistakes shows no skew either.
    assert m["faithful_handwritten_flipped_rows"] == 0
    assert m["faithful_handwritten_max_abs_dp"] <= 1e-12


# --- counterfactuals: the two artefact claims measure different things ----------------------


@pytest.fixture(scope="module")
def outside(tmp_path_factory: pytest.TempPathFactory) -> LabResult:
    cf = COUNTERFACTUALS.get("features-outside-the-artefact")
    return COUNTERFACTUALS.run_with(cf, SMALL, tmp_path_factory.mktemp("outside"))


@pytest.fixture(scope="module")
def reimplemented(tmp_path_factory: pytest.TempPathFactory) -> LabResult:
    cf = COUNTERFACTUALS.get("serving-reimplements-features")
    return COUNTERFACTUALS.run_with(cf, SMALL, tmp_path_factory.mktemp("reimplemented"))


@pytest.mark.counterfactual
def test_a_classifier_logged_without_its_features_is_not_one_artefact(outside) -> None:
    claim = outside.claim("one_fitted_artefact")
    m = dict(claim.measured)
    assert not claim.passed
    # The fresh process got a bare classifier: it expects the 15 engineered features, knows
    # no raw column names, and refuses raw rows.
    assert m["artefact_type"] == "LogisticRegression" and m["inputs_expected"] == 15
    assert m["raw_input_columns"] is None and not m["takes_the_raw_columns"]
    assert m["fresh_process_vs_trained_max_abs_dp"] is None and m["raw_rows_refused"]
    # Serving then fits the features per request: the served features are not the offline ones.
    skew = dict(outside.claim("shipped_pipeline_no_skew").measured)
    assert skew["rows_with_feature_skew"] > 0.9 * SMALL.holdout_rows and skew["flipped_rows"] > 0


@pytest.mark.counterfactual
def test_serving_that_reimplements_the_features_skews_on_served_requests(reimplemented) -> None:
    claim = reimplemented.claim("shipped_pipeline_no_skew")
    m = dict(claim.measured)
    assert not claim.passed
    assert m["serving_process"] and m["rows_served"] == SMALL.holdout_rows
    assert m["rows_with_feature_skew"] > 0.5 * SMALL.holdout_rows  # batch statistics: most rows
    assert m["max_abs_feature_diff"] > 0.1 and m["flipped_rows"] > 0 and m["auc_loss"] > 0
    # The artefact itself is still the one fitted object: only the serving path broke.
    assert reimplemented.claim("one_fitted_artefact").passed


def test_naive_join_leaks_the_future(lab: LabResult) -> None:
    m = measured(lab, "naive_join_leaks_future")
    assert m["future_calls_counted"] > 0 and 0.2 < m["future_call_share"] < 0.5
    assert m["offline_roc_auc"] > m["honest_offline_roc_auc"] + 0.03  # inflated offline …
    assert m["gap"] > SMALL.pit_leak_alert  # … and it does not survive production
    honest = measured(lab, "asof_join_honest")
    assert m["production_roc_auc"] < honest["production_roc_auc"]


def test_asof_join_is_honest(lab: LabResult) -> None:
    m = measured(lab, "asof_join_honest")
    assert m["future_calls_counted"] == 0 and m["rows_differing_from_live"] == 0
    assert abs(m["offline_roc_auc"] - m["production_roc_auc"]) <= SMALL.pit_honest_gap


def test_summary_follows_the_contract(lab: LabResult, tmp_path: Path, capsys) -> None:
    assert lab.passed, [c.id for c in lab.claims if not c.passed]
    assert finish(lab, tmp_path) == 0
    summary = read_summary(tmp_path / "summary.json")
    assert summary.lab == "features" and summary.passed
    assert summary.question == topic("features").question
    assert [c.id for c in summary.claims] == CLAIMS
    assert summary.mlflow["experiment"] == "lab-features" and summary.mlflow["run_id"]
    assert any(a.endswith("skew_and_leakage.png") for a in summary.artifacts)
    assert "✓ shipped_pipeline_no_skew" in capsys.readouterr().out


def test_the_plot_shows_the_measured_numbers(lab: LabResult) -> None:
    png = next(Path(a) for a in lab.artifacts if a.endswith(".png"))
    drawn = read_drawing(png)
    skew_axis, pit_axis = drawn["axes"]
    flipped = next(b for b in skew_axis["bars"] if b["label"] == "labels flipped")["heights"]
    hand = measured(lab, "handwritten_transform_skews")
    assert flipped[0] == 0.0 and flipped[-1] == pytest.approx(hand["flipped_share"])
    offline = next(b for b in pit_axis["bars"] if b["label"] == "offline (validation)")
    production = next(b for b in pit_axis["bars"] if b["label"] == "production")
    naive = measured(lab, "naive_join_leaks_future")
    assert offline["heights"][0] == pytest.approx(naive["offline_roc_auc"])
    assert production["heights"][0] == pytest.approx(naive["production_roc_auc"])
    assert pit_axis["ylim"] == [0.0, 1.0]


def test_mlflow_run_holds_the_claims_and_the_model(lab: LabResult) -> None:
    import mlflow

    from labs.common.tracking import load_sklearn_model

    metrics = mlflow.get_run(lab.mlflow["run_id"]).data.metrics
    assert all(metrics[f"claim.{c}.passed"] == 1.0 for c in CLAIMS)
    assert metrics["handwritten_transform_skews.flipped_rows"] > 0
    served = load_sklearn_model(lab.mlflow["model_uri"])
    assert list(served.feature_names_in_) == list(FEATURES)


# --- the parts: hand-written features, joins ---------------------------------------------


def test_faithful_handwritten_features_equal_the_pipeline(fitted) -> None:
    pipeline, batch = fitted
    expected = pipeline.named_steps["features"].transform(batch[list(FEATURES)])
    got = handwritten_features(batch, export_feature_spec(pipeline))
    assert got.shape == expected.shape == (len(batch), len(feature_names(pipeline)))
    np.testing.assert_allclose(got, expected, rtol=0, atol=1e-12)


@pytest.mark.parametrize("mistake", MISTAKES)
def test_each_mistake_changes_the_features(fitted, mistake: str) -> None:
    pipeline, batch = fitted
    spec = export_feature_spec(pipeline)
    assert not np.allclose(
        handwritten_features(batch, spec, [mistake]), handwritten_features(batch, spec)
    )


def test_pipeline_needs_only_allowlisted_types(fitted) -> None:
    from labs.common.tracking import trusted_types_for

    pipeline, _ = fitted
    assert trusted_types_for(pipeline) == ["numpy.dtype"]


def test_joins_on_a_hand_made_log() -> None:
    t = pd.Timestamp("2025-03-01 12:00")
    rows = pd.DataFrame({events.CUSTOMER: [1, 2, 3], events.DECISION: [t, t, t]})
    log = pd.DataFrame(
        {
            events.CUSTOMER: [1, 1, 1, 1, 2],
            events.CALL_TIME: [
                t - pd.Timedelta(days=9),
                t - pd.Timedelta(seconds=1),
                t,  # at the decision moment: not yet known
                t + pd.Timedelta(days=2),  # a cancellation call
                t + pd.Timedelta(days=1),
            ],
        }
    )
    assert events.naive_join(rows, log)[events.CALLS].tolist() == [4, 1, 0]
    assert events.asof_join(rows, log)[events.CALLS].tolist() == [2, 0, 0]
    assert events.live_feature(rows, log).tolist() == [2, 0, 0]
    naive = events.naive_join(rows, log)[events.CALLS]
    assert events.future_calls_used(rows, log, naive) == 3


def test_asof_join_keeps_row_order() -> None:
    customers = events.make_customers(50, seed=1, first_id=0, start=events.EPOCH, span_days=30)
    log = events.make_call_log(customers, 2, 90, 30, 2.0, 0.2)
    joined = events.asof_join(customers, log)
    assert joined[events.CUSTOMER].tolist() == customers[events.CUSTOMER].tolist()
    assert (joined[events.CALLS] == customers[events.CALLS]).all()  # the generator's history


def test_no_future_events_means_no_leak_and_same_numbers(lab: LabResult) -> None:
    # Negative case: nobody calls after the decision date → the naive join is the as-of join.
    quiet = measure_point_in_time(replace(SMALL, cancel_calls_churned=0.0, cancel_calls_stayed=0.0))
    assert quiet["naive_join"] == quiet["asof_join"]
    assert quiet["naive_join"]["future_calls_counted"] == 0
    assert abs(quiet["naive_join"]["gap"]) <= SMALL.pit_honest_gap
    # The as-of table never sees those calls, so its numbers are the lab's, to the last digit:
    # the same seed gives the same numbers, and future events cannot move them.
    honest = measured(lab, "asof_join_honest")
    assert quiet["asof_join"]["offline_roc_auc"] == honest["offline_roc_auc"]
    assert quiet["asof_join"]["production_roc_auc"] == honest["production_roc_auc"]


def test_a_backtest_from_todays_log_hides_the_leak() -> None:
    # Counterfactual backtest-from-todays-log: "production" counts the calls in today's log.
    naive = measure_point_in_time(SMALL, production_feature=calls_in_todays_log)["naive_join"]
    assert naive["future_calls_counted"] == 0  # the check counts the same future calls …
    assert naive["gap"] <= SMALL.pit_leak_alert  # … so offline and "production" agree


def test_an_asof_join_to_the_nearest_call_counts_the_future() -> None:
    # Counterfactual asof-join-nearest: merge_asof(direction="nearest").
    asof = measure_point_in_time(SMALL, training_join=asof_join_nearest)["asof_join"]
    assert asof["future_calls_counted"] > 0 and asof["rows_differing_from_live"] > 0


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"serving_batch_rows": 1}, r"features\.serving_batch_rows must be >= 2"),
        ({"missing_rate": 0.7}, r"features\.missing_rate"),
        ({"cancel_calls_churned": -1.0}, r"features\.cancel_calls_churned"),
        ({"pit_honest_gap": 0.0}, r"features\.pit_honest_gap"),
    ],
)
def test_bad_params_are_refused(change: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        replace(SMALL, **change)


def test_params_yaml_section_is_complete() -> None:
    from labs.common.params import params_for

    assert isinstance(params_for(FeaturesParams, "features"), FeaturesParams)
