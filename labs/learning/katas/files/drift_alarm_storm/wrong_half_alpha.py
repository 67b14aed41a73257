"""A wrong fix: a stricter threshold, but not per column — with 9 columns at 0.025 each a quiet
day still pages about one morning in five."""


def column_threshold(alpha: float, columns: int) -> float:
    return alpha / 2
