"""The small shared core: toy data, params, paths, MLflow tracking, the lab result contract.

Importing this package is cheap (no MLflow, Evidently or Prefect): import the submodule you
need, e.g. ``from labs.common.data import make_churn_data``.
"""
