"""The drift monitor's alert rule.

Every morning the monitor tests each of ``columns`` columns of the day's batch against the
reference (one statistical test per column, each giving a p-value) and pages on-call when any
column's p-value is below the threshold this function returns.
"""


def column_threshold(alpha: float, columns: int) -> float:
    """The p-value below which one column counts as drifted; ``alpha`` is the monitor's budget
    for false alarms (pages on a day with no drift)."""
    return alpha
