"""A wrong fix: the factor of this incident written in — the next export's unit breaks it."""

from typing import Any

import pandas as pd

from labs.data_quality.steps import convert, estimate_renames


def hotfix_units(frame: pd.DataFrame, medians: Any) -> tuple[pd.DataFrame, dict[str, Any]]:
    renames = estimate_renames(frame)
    return convert(frame, 100.0, renames), {"unit_factor": 100.0, "renames": renames}
