"""The ingestion hotfix: convert a batch from the new billing export back to the model's units.

``medians`` holds the training data's median of each numeric column (the reference).
Returns the converted batch and what the conversion found (logged with the data version).
"""

from typing import Any

import pandas as pd

from labs.data_quality.steps import convert, estimate_renames


def hotfix_units(frame: pd.DataFrame, medians: Any) -> tuple[pd.DataFrame, dict[str, Any]]:
    # The changelog of the export says charges are now in "milli-euros".
    renames = estimate_renames(frame)  # renamed contract categories, mapped back
    factor = 1000.0
    return convert(frame, factor, renames), {"unit_factor": factor, "renames": renames}
