"""The order of the feature columns the training step builds its matrix in.

``names`` are the feature columns the config selects (collected in a set on the way, so each
appears once). Returns them as the list the model is trained on.
"""

from typing import Any


def column_order(names: Any) -> list[str]:
    # A set of strings iterates in an order that depends on PYTHONHASHSEED, which differs
    # between processes: "the order they come in" is another order in every run, and so is
    # the model file. Choose the order: sorted.
    return sorted(names)
