"""Point-in-time features from an event log: a support-call log, and three ways to count calls.

Each customer has a **decision date**: the day the churn model scores them, and the label is
whether they leave within ``outcome_days`` after it. Their support calls are events in a log
with timestamps: the calls of the ``history_days`` before the decision date (as many as the
generator's ``support_calls`` column says), and calls *after* it — customers who are leaving
call to cancel. A training table built today, long after those decision dates, can see both.

- :func:`naive_join` counts every call in today's log: it leaks calls from the future.
- :func:`asof_join` counts, with ``pandas.merge_asof``, only calls before each row's decision
  date: what production could have known at that moment.
- :func:`live_feature` is production: at the decision moment it counts the calls logged so far
  (written independently of :func:`asof_join`, so that their agreement is a test, not a tautology).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from labs.common.data import TARGET, make_churn_data

CUSTOMER = "customer_id"
DECISION = "decision_time"
CALL_TIME = "call_time"
CALLS = "support_calls"  # the feature, rebuilt from the log
EPOCH = pd.Timestamp("2025-01-01")


def make_customers(
    n: int, seed: int, first_id: int, start: pd.Timestamp, span_days: int
) -> pd.DataFrame:
    """``n`` labelled customers with ids from ``first_id`` and decision times spread over
    ``span_days`` from ``start``; ``support_calls`` is the true count in the history window."""
    frame = make_churn_data(n, seed=seed)
    rng = np.random.default_rng([seed, 31])
    seconds = rng.integers(0, span_days * 86_400, n)
    frame.insert(0, DECISION, start + pd.to_timedelta(seconds, unit="s"))
    frame.insert(0, CUSTOMER, np.arange(first_id, first_id + n))
    return frame


def make_call_log(
    customers: pd.DataFrame,
    seed: int,
    history_days: int,
    outcome_days: int,
    cancel_calls_churned: float,
    cancel_calls_stayed: float,
) -> pd.DataFrame:
    """The support-call log: one row per call (``customer_id``, ``call_time``), sorted by time.

    Before the decision date: ``support_calls`` calls, uniformly in the ``history_days``
    before it. After it: Poisson(``cancel_calls_churned``) calls for customers who churn and
    Poisson(``cancel_calls_stayed``) for those who stay, within ``outcome_days``.
    """
    rng = np.random.default_rng([seed, 47])
    before = customers[CALLS].to_numpy(int)
    churned = customers[TARGET].to_numpy(bool)
    after = rng.poisson(np.where(churned, cancel_calls_churned, cancel_calls_stayed))
    ids = np.concatenate(
        [np.repeat(customers[CUSTOMER], before), np.repeat(customers[CUSTOMER], after)]
    )
    decision = customers[DECISION].to_numpy()
    # Offsets in whole seconds, strictly before (1 s … history) or strictly after (1 s … outcome).
    back = rng.integers(1, history_days * 86_400, before.sum())
    ahead = rng.integers(1, outcome_days * 86_400, after.sum())
    times = np.concatenate(
        [
            np.repeat(decision, before) - back.astype("timedelta64[s]"),
            np.repeat(decision, after) + ahead.astype("timedelta64[s]"),
        ]
    )
    log = pd.DataFrame({CUSTOMER: ids, CALL_TIME: times})
    return log.sort_values([CALL_TIME, CUSTOMER], kind="stable").reset_index(drop=True)


def naive_join(rows: pd.DataFrame, log: pd.DataFrame) -> pd.DataFrame:
    """``rows`` with ``support_calls`` = every call in the log: a plain group-by and merge."""
    counts = log.groupby(CUSTOMER).size().rename(CALLS)
    out = rows.drop(columns=[CALLS], errors="ignore").merge(
        counts, left_on=CUSTOMER, right_index=True, how="left"
    )
    out[CALLS] = out[CALLS].fillna(0).astype(int)
    return out


def asof_join(rows: pd.DataFrame, log: pd.DataFrame, direction: str = "backward") -> pd.DataFrame:
    """``rows`` with ``support_calls`` = calls strictly before each row's decision time
    (``direction="backward"``: the last call before it).

    Each call carries the customer's running count; ``merge_asof`` takes, per customer, the
    last call before the decision time (``allow_exact_matches=False``: a call logged at the
    very moment of the decision was not yet known).
    """
    calls = log.sort_values(CALL_TIME, kind="stable").copy()
    calls["calls_so_far"] = calls.groupby(CUSTOMER).cumcount() + 1
    ordered = rows.drop(columns=[CALLS], errors="ignore").sort_values(DECISION, kind="stable")
    joined = pd.merge_asof(
        ordered,
        calls[[CUSTOMER, CALL_TIME, "calls_so_far"]],
        left_on=DECISION,
        right_on=CALL_TIME,
        by=CUSTOMER,
        direction=direction,  # type: ignore[arg-type]
        allow_exact_matches=False,
    )
    joined[CALLS] = joined.pop("calls_so_far").fillna(0).astype(int)
    return joined.drop(columns=[CALL_TIME]).set_index(ordered.index).loc[rows.index]


def live_feature(rows: pd.DataFrame, log: pd.DataFrame) -> pd.Series:
    """Production: at each customer's decision time, the number of their calls logged so far."""
    known = log.merge(rows[[CUSTOMER, DECISION]], on=CUSTOMER)
    known = known[known[CALL_TIME] < known[DECISION]]
    counts = known.groupby(CUSTOMER).size()
    return rows[CUSTOMER].map(counts).fillna(0).astype(int).rename(CALLS)


def future_calls_used(rows: pd.DataFrame, log: pd.DataFrame, feature: pd.Series) -> int:
    """How many of the counted calls happened at or after the row's decision time."""
    return int((feature - live_feature(rows, log)).sum())
