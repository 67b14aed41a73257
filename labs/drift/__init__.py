"""Lab ``drift``: model (covariate) drift vs concept drift, detected and told apart.

``labs.common.drift.detect_drift`` is the reusable part: other labs and the retraining
flow call it.
"""
