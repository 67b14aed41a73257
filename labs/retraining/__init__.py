"""Lab ``retraining``: the ``retrain`` pipeline's decisions over four months, no server needed."""
