"""A wrong fix: a seeded shuffle — reproducible only if what it shuffles came in one order."""

import random
from typing import Any


def column_order(names: Any) -> list[str]:
    ordered = list(names)
    random.Random(0).shuffle(ordered)
    return ordered
