"""The ingestion hotfix: convert a batch from the new billing export back to the model's units.

``medians`` holds the training data's median of each numeric column (the reference).
Returns the converted batch and what the conversion found (logged with the data version).
"""

import math
from typing import Any

import pandas as pd

from labs.data_quality.steps import convert, estimate_renames


def hotfix_units(frame: pd.DataFrame, medians: Any) -> tuple[pd.DataFrame, dict[str, Any]]:
    # Estimate the unit from the data, not from a changelog: the ratio of the batch's median to
    # the reference median, snapped to a power of ten (units differ by powers of ten; a real
    # drift moves the median by far less than ×√10, so it snaps to 1).
    median = float(pd.to_numeric(frame["monthly_charges"], errors="coerce").median())
    reference = float(medians["monthly_charges"])
    factor = 1.0
    if math.isfinite(median) and median > 0 and reference > 0:
        factor = float(10.0 ** round(math.log10(median / reference)))
    renames = estimate_renames(frame)  # renamed contract categories, mapped back
    return convert(frame, factor, renames), {"unit_factor": factor, "renames": renames}
