"""The toy churn generator: deterministic, and each knob does what it says and nothing else."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy import stats
from sklearn.metrics import roc_auc_score

from labs.common.data import (
    CATEGORICAL_FEATURES,
    CATEGORIES,
    FEATURES,
    NUMERIC_RANGES,
    TARGET,
    Incident,
    ScheduledEvent,
    churn_probability,
    make_churn_data,
    make_production_stream,
)

N = 4000


@pytest.fixture(scope="module")
def reference() -> pd.DataFrame:
    return make_churn_data(N, seed=1)


@pytest.fixture(scope="module")
def independent() -> pd.DataFrame:
    """A second draw from the reference distribution, for two-sample tests."""
    return make_churn_data(N, seed=2)


def same_distribution(a: pd.Series, b: pd.Series) -> float:
    """p-value of a two-sample test: K-S for numbers, chi-square contingency for categories."""
    if a.name in CATEGORICAL_FEATURES:
        table = pd.concat([a.value_counts(), b.value_counts()], axis=1).fillna(0).to_numpy()
        return float(stats.chi2_contingency(table)[1])
    return float(stats.ks_2samp(a, b).pvalue)


def test_schema_and_plausible_reference(reference: pd.DataFrame) -> None:
    assert list(reference.columns) == [*FEATURES, TARGET]
    assert 0.22 < reference[TARGET].mean() < 0.32
    for name, (low, high) in NUMERIC_RANGES.items():
        assert reference[name].between(low, high).all(), name
    for name in CATEGORICAL_FEATURES:
        assert set(reference[name]) == set(CATEGORIES[name])
    # The label is learnable but noisy: the generator's own model has AUC ~0.83.
    assert 0.78 < roc_auc_score(reference[TARGET], churn_probability(reference)) < 0.88


def test_same_seed_same_frame_other_seed_other_frame(reference: pd.DataFrame) -> None:
    pd.testing.assert_frame_equal(make_churn_data(N, seed=1), reference)
    assert not make_churn_data(N, seed=3).equals(reference)


def test_numeric_covariate_shift_moves_only_that_column(
    reference: pd.DataFrame, independent: pd.DataFrame
) -> None:
    shifted = make_churn_data(N, seed=1, covariate_shift={"monthly_charges": 15.0})
    moved = shifted["monthly_charges"].mean() - reference["monthly_charges"].mean()
    assert moved == pytest.approx(15.0, abs=0.1)
    assert same_distribution(shifted["monthly_charges"], independent["monthly_charges"]) < 1e-6
    for name in FEATURES:
        if name != "monthly_charges":
            # Same values for the same seed, and the same distribution as an independent draw.
            pd.testing.assert_series_equal(shifted[name], reference[name])
            assert same_distribution(shifted[name], independent[name]) > 0.001, name


def test_categorical_covariate_shift_sets_probabilities(
    reference: pd.DataFrame, independent: pd.DataFrame
) -> None:
    wanted = {"month-to-month": 0.8, "one-year": 0.15, "two-year": 0.05}
    shifted = make_churn_data(N, seed=1, covariate_shift={"contract": wanted})
    observed = shifted["contract"].value_counts(normalize=True)
    for category, p in wanted.items():
        assert observed[category] == pytest.approx(p, abs=0.02)
    assert same_distribution(shifted["contract"], independent["contract"]) < 1e-6
    for name in FEATURES:
        if name != "contract":
            pd.testing.assert_series_equal(shifted[name], reference[name])
    # P(churn | x) is unchanged, so more month-to-month customers means more churn.
    assert shifted[TARGET].mean() > reference[TARGET].mean() + 0.05


def test_concept_drift_changes_p_y_given_x_not_p_x(reference: pd.DataFrame) -> None:
    drifted = make_churn_data(N, seed=1, concept_drift=0.7)
    pd.testing.assert_frame_equal(drifted[list(FEATURES)], reference[list(FEATURES)])
    # The base rate stays (this is not prior shift) …
    assert drifted[TARGET].mean() == pytest.approx(reference[TARGET].mean(), abs=0.03)
    # … but the old relationship no longer ranks customers: AUC ~0.83 → below 0.5.
    auc_before = roc_auc_score(reference[TARGET], churn_probability(reference))
    auc_after = roc_auc_score(drifted[TARGET], churn_probability(drifted))
    assert auc_before > 0.78
    assert auc_after < 0.5


def test_prior_shift_moves_base_rate_keeps_p_x_given_y(reference: pd.DataFrame) -> None:
    shifted = make_churn_data(N, seed=5, churn_rate=0.5)
    assert shifted[TARGET].mean() == pytest.approx(0.5, abs=1 / N)
    for label in (0, 1):
        a = shifted[shifted[TARGET] == label]
        b = reference[reference[TARGET] == label]
        for name in FEATURES:
            assert same_distribution(a[name], b[name]) > 0.001, (label, name)


@pytest.mark.parametrize(
    ("incident", "check"),
    [
        (
            Incident("rename_column", "monthly_charges", new_name="monthly_fee"),
            lambda ref, out: (
                list(out.columns)
                == [("monthly_fee" if c == "monthly_charges" else c) for c in ref.columns]
            ),
        ),
        (
            Incident("drop_column", "contract"),
            lambda ref, out: list(out.columns) == [c for c in ref.columns if c != "contract"],
        ),
        (
            Incident("unit_change", "monthly_charges", factor=100),
            lambda ref, out: (
                np.allclose(out["monthly_charges"], ref["monthly_charges"] * 100)
                and out.drop(columns="monthly_charges").equals(ref.drop(columns="monthly_charges"))
            ),
        ),
    ],
    ids=["rename", "drop", "unit_change"],
)
def test_schema_incidents_break_exactly_what_is_asked(reference, incident, check) -> None:
    out = make_churn_data(N, seed=1, incidents=[incident])
    assert check(reference, out)


def test_missing_values_incident(reference: pd.DataFrame) -> None:
    out = make_churn_data(N, seed=1, incidents=[Incident("missing_values", "age", rate=0.1)])
    assert out["age"].isna().mean() == pytest.approx(0.1, abs=0.02)
    kept = out["age"].notna()
    assert (out.loc[kept, "age"] == reference.loc[kept, "age"]).all()
    assert out.drop(columns="age").equals(reference.drop(columns="age"))


def test_out_of_range_incident(reference: pd.DataFrame) -> None:
    incident = Incident("out_of_range", "support_calls", rate=0.05, factor=1)
    out = make_churn_data(N, seed=1, incidents=[incident])
    low, _ = NUMERIC_RANGES["support_calls"]
    assert (out["support_calls"] < low).mean() == pytest.approx(0.05, abs=0.015)
    assert out.drop(columns="support_calls").equals(reference.drop(columns="support_calls"))


def test_production_stream_schedules_events() -> None:
    events = [ScheduledEvent(start_day=3, covariate_shift={"monthly_charges": 20.0})]
    stream = make_production_stream(6, 400, seed=9, events=events)
    assert sorted(stream["day"].unique()) == list(range(6))
    means = stream.groupby("day")["monthly_charges"].mean()
    assert (means.loc[:2] < 75).all() and (means.loc[3:] > 85).all()
    # A day is the same rows however many days are drawn.
    shorter = make_production_stream(4, 400, seed=9, events=events)
    pd.testing.assert_frame_equal(
        stream[stream["day"] == 3].reset_index(drop=True),
        shorter[shorter["day"] == 3].reset_index(drop=True),
    )


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"n": -5}, r"n must be a positive integer"),
        ({"n": 0}, r"n must be a positive integer"),
        ({"covariate_shift": {"salary": 1.0}}, r"unknown column 'salary'.*allowed"),
        ({"covariate_shift": {"contract": {"weekly": 1.0}}}, r"unknown categories \['weekly'\]"),
        ({"covariate_shift": {"contract": {"month-to-month": 0.5}}}, r"must sum to 1"),
        ({"covariate_shift": {"contract": 3.0}}, r"must map categories"),
        ({"covariate_shift": {"age": float("nan")}}, r"finite number"),
        ({"concept_drift": 1.5}, r"concept_drift must be in \[0, 1\]"),
        ({"churn_rate": 1.0}, r"churn_rate must be in the open interval \(0, 1\)"),
        ({"incidents": [Incident("missing_values", "age", rate=-0.1)]}, r"incident.rate"),
        ({"incidents": [Incident("unit_change", "contract")]}, r"needs a numeric column"),
        ({"incidents": [Incident("explode", "age")]}, r"incident kind 'explode' is unknown"),  # type: ignore[arg-type]
    ],
)
def test_bad_knobs_name_the_knob_and_range(kwargs: dict, message: str) -> None:
    kwargs = {"n": 10, **kwargs}
    with pytest.raises(ValueError, match=message):
        make_churn_data(**kwargs)
