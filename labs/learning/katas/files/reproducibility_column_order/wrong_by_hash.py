"""A wrong fix: sorted, but by each name's hash — which is what PYTHONHASHSEED changes."""

from typing import Any


def column_order(names: Any) -> list[str]:
    return sorted(names, key=hash)
