"""The order of the feature columns the training step builds its matrix in.

``names`` are the feature columns the config selects (collected in a set on the way, so each
appears once). Returns them as the list the model is trained on.
"""

from typing import Any


def column_order(names: Any) -> list[str]:
    # de-duplicate, keeping the order the names come in
    return list(dict.fromkeys(names))
