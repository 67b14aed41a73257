"""A covariate shift moves every numeric column by the requested amount, integers included."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from labs.common.data import INTEGER_FEATURES, NUMERIC_FEATURES, NUMERIC_RANGES, make_churn_data

N = 40_000


@pytest.mark.parametrize("column", NUMERIC_FEATURES)
@pytest.mark.parametrize("amount", [0.245, 1.0, 2.5])
def test_numeric_shift_moves_the_mean_by_the_amount(column: str, amount: float) -> None:
    before = make_churn_data(N, seed=3)[column]
    after = make_churn_data(N, seed=3, covariate_shift={column: amount})[column]
    low, high = NUMERIC_RANGES[column]
    clipped = ((before + amount) > high).mean() + ((before + amount) < low).mean()
    # Standard error of a Bernoulli rounding share at N rows is < 0.003; clipping loses a little.
    assert after.mean() - before.mean() == pytest.approx(amount, abs=0.01 + amount * clipped)
    if column in INTEGER_FEATURES:
        assert pd.api.types.is_integer_dtype(after)
        assert set(np.unique(after - before)) <= {np.floor(amount), np.ceil(amount)}


def test_unshifted_columns_and_data_stay_bit_for_bit() -> None:
    base = make_churn_data(2_000, seed=9)
    shifted = make_churn_data(2_000, seed=9, covariate_shift={"support_calls": 0.5})
    pd.testing.assert_frame_equal(
        base.drop(columns=["support_calls", "churned"]),
        shifted.drop(columns=["support_calls", "churned"]),
    )
    pd.testing.assert_frame_equal(make_churn_data(2_000, seed=9), base)
