"""The data contract's extensions (key, cross-column rule, batch expectations, split_batch) and
the pandera behaviour they rely on, pinned rather than assumed."""

from __future__ import annotations

import pandas as pd
import pandera.pandas as pa
import pytest

from labs.common.data import Incident, make_churn_data
from labs.common.schema import (
    LIFETIME_RULE,
    REASONS_COLUMN,
    BatchExpectations,
    batch_schema,
    split_batch,
    validate_batch,
)

KEY = "customer_id"


@pytest.fixture(scope="module")
def clean() -> pd.DataFrame:
    frame = make_churn_data(400, seed=3)
    frame.insert(0, KEY, range(400))
    return frame


@pytest.fixture(scope="module")
def expectations() -> BatchExpectations:
    return BatchExpectations.from_reference(make_churn_data(2000, seed=4))


def broken(clean: pd.DataFrame) -> pd.DataFrame:
    """Five problems in five rows, one column each, plus a clean remainder."""
    out = clean.copy()
    out["age"] = out["age"].astype(object)
    out["contract"] = out["contract"].astype(str)
    out.loc[10, "age"] = None  # missing
    out.loc[11, "support_calls"] = -1  # out of range
    out.loc[12, "contract"] = "monthly"  # unknown category
    out.loc[13, KEY] = out.loc[0, KEY]  # duplicate key (row 0 keeps it)
    out.loc[14, ["tenure_months", "age"]] = [240, 19]  # each in range, the pair impossible
    return out


def test_a_clean_batch_is_valid_and_not_quarantined(clean, expectations) -> None:
    split = split_batch(clean, key=KEY, expectations=expectations)
    assert split.rows == 400 and len(split.valid) == 400 and split.quarantined.empty
    assert split.batch_reasons == () and split.refusal(0.0) == ()
    assert validate_batch(clean).valid


def test_split_loses_nothing_and_names_each_rows_problem(clean) -> None:
    frame = broken(clean)
    split = split_batch(frame, key=KEY)
    assert sorted(split.quarantined.index) == [10, 11, 12, 13, 14]
    # valid + quarantined = input, row for row: disjoint, complete, unchanged
    assert set(split.valid.index).isdisjoint(split.quarantined.index)
    rebuilt = pd.concat([split.valid, split.quarantined.drop(columns=REASONS_COLUMN)]).sort_index()
    pd.testing.assert_frame_equal(rebuilt, frame)
    reasons = split.quarantined[REASONS_COLUMN].to_dict()
    assert reasons[10] == "age: missing"
    assert reasons[11].startswith("support_calls: in_range")
    assert reasons[12].startswith("contract: isin")
    assert reasons[13] == f"{KEY}: duplicate key"
    assert reasons[14] == LIFETIME_RULE
    assert split.bad_share == pytest.approx(5 / 400)
    # the valid rows pass the whole contract on their own
    batch_schema(key=KEY).validate(split.valid, lazy=True)


def test_threshold_refuses_the_batch_whole(clean) -> None:
    split = split_batch(broken(clean), key=KEY)
    assert split.refusal(0.05) == ()
    (reason,) = split.refusal(0.01)
    assert "5 of 400 rows" in reason


def test_a_bad_type_does_not_hide_a_range_failure_in_the_same_column(clean) -> None:
    # pandera: after a coercion failure the column's other checks fail without naming rows.
    # split_batch validates the rest again, so the out-of-range row is still found.
    frame = clean.copy()
    frame["age"] = frame["age"].astype(object)
    frame.loc[5, "age"] = "abc"
    frame.loc[6, "age"] = 150
    with pytest.raises(pa.errors.SchemaErrors) as err:
        batch_schema().validate(frame, lazy=True)
    cases = err.value.failure_cases
    in_range = cases[cases["check"].astype(str).str.startswith("in_range")]
    assert in_range["index"].isna().all()  # the behaviour we work around
    split = split_batch(frame)
    assert split.quarantined[REASONS_COLUMN].to_dict() == {
        5: "age: wrong type",
        6: "age: in_range(18, 100)",
    }
    assert split.batch_reasons == ()


def test_missing_column_is_a_batch_failure(clean) -> None:
    frame = clean.rename(columns={"monthly_charges": "monthly_charge_cents"})
    split = split_batch(frame, key=KEY)
    assert split.quarantined.empty
    assert split.batch_reasons == ("missing column 'monthly_charges'",)
    assert split.refusal(0.5)


@pytest.mark.parametrize("factor", [2.0, 3.0])
def test_median_expectation_catches_what_the_range_misses(clean, expectations, factor) -> None:
    frame = make_churn_data(400, seed=3, incidents=[Incident("unit_change", "monthly_charges",
                                                             factor=factor)])  # fmt: skip
    frame.insert(0, KEY, range(400))
    assert split_batch(frame, key=KEY).refusal(0.0) == ()  # every value is in range
    split = split_batch(frame, key=KEY, expectations=expectations)
    assert split.quarantined.empty
    (reason,) = split.batch_reasons
    assert reason.startswith("monthly_charges: the batch median lies outside")


def test_expectations_tolerate_real_drift(clean, expectations) -> None:
    # a price rise of 6 (0.3 SD) is drift for the drift monitor, not a contract breach
    frame = make_churn_data(400, seed=3, covariate_shift={"monthly_charges": 6.0})
    assert split_batch(frame, expectations=expectations).refusal(0.0) == ()


def test_empty_batch_is_refused() -> None:
    split = split_batch(make_churn_data(5, seed=1).iloc[:0])
    assert split.rows == 0 and split.refusal(1.0) == ("the batch is empty",)


# --- pandera behaviour we rely on (pandera 0.35; see pandera#1830) -------------------------


def test_pandera_lazy_mode_reports_every_failure_at_once(clean) -> None:
    with pytest.raises(pa.errors.SchemaErrors) as err:
        batch_schema(key=KEY).validate(broken(clean), lazy=True)
    checks = set(err.value.failure_cases["check"].astype(str))
    assert {"not_nullable", "field_uniqueness", LIFETIME_RULE} <= checks
    assert any(c.startswith("in_range") for c in checks)
    assert any(c.startswith("isin") for c in checks)


def test_pandera_eager_mode_stops_at_the_first_failure(clean) -> None:
    with pytest.raises(pa.errors.SchemaError):
        batch_schema(key=KEY).validate(broken(clean), lazy=False)


def test_pandera_drop_invalid_rows_needs_the_schema_built_with_it(clean) -> None:
    schema = batch_schema(key=KEY)
    assert schema.drop_invalid_rows is False
    with pytest.raises(pa.errors.SchemaErrors):
        schema.validate(broken(clean), lazy=True)
    dropping = pa.DataFrameSchema(
        schema.columns, checks=schema.checks, coerce=True, drop_invalid_rows=True
    )
    kept = dropping.validate(broken(clean), lazy=True)
    # pandera's own row dropping agrees with our split on which rows survive
    assert list(kept.index) == list(split_batch(broken(clean), key=KEY).valid.index)


def test_pandera_reports_duplicates_after_the_first(clean) -> None:
    frame = clean.copy()
    frame.loc[[7, 8], KEY] = frame.loc[6, KEY]
    split = split_batch(frame, key=KEY)
    assert sorted(split.quarantined.index) == [7, 8]  # row 6, the first, stays valid
