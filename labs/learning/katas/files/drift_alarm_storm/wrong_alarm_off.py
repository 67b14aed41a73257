"""A wrong fix: no p-value is below 0, so the monitor never pages — no false alarms, and no
alarm when the inputs really drift."""


def column_threshold(alpha: float, columns: int) -> float:
    return 0.0
