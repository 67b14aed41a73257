"""Training rows for the churn model: each customer's ``support_calls`` as of their decision
date, from the call log (one row per call: customer, call time).

``rows`` has one row per customer with their decision date; returns ``rows`` with the
``support_calls`` column filled in.
"""

import pandas as pd

from labs.features.events import asof_join


def training_rows(rows: pd.DataFrame, log: pd.DataFrame) -> pd.DataFrame:
    # each customer's call count at the call closest to the decision date
    return asof_join(rows, log, direction="nearest")
