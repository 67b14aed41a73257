"""The drift monitor's alert rule.

Every morning the monitor tests each of ``columns`` columns of the day's batch against the
reference (one statistical test per column, each giving a p-value) and pages on-call when any
column's p-value is below the threshold this function returns.
"""

# The p-values of the tests are approximate at these batch sizes: keep a little of the budget
# in reserve (the lab measured 4.7 % false alarms at 0.85 of the Bonferroni share).
MARGIN = 0.8


def column_threshold(alpha: float, columns: int) -> float:
    """The p-value below which one column counts as drifted; ``alpha`` is the monitor's budget
    for false alarms (pages on a day with no drift)."""
    # The page fires if ANY column fires: with k independent tests at alpha each, a quiet day
    # pages with probability 1 - (1 - alpha)^k (≈ 37 % for 9 columns at 0.05). Bonferroni:
    # give each column alpha / k, so the family's rate stays at most alpha.
    return MARGIN * alpha / max(columns, 1)
