"""The global feature importance shown on the model card: one number per column, from the SHAP
values of many customers (``values``: one row per customer, one column per feature)."""

import numpy as np


def global_importance(values: np.ndarray) -> np.ndarray:
    """How much each column drives the model's predictions overall."""
    # A column that pushes some customers towards churn and others away has SHAP values of both
    # signs: averaged as they are, they cancel. Its importance is the size of its pushes.
    return np.abs(values).mean(axis=0)
