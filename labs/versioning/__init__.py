"""Lab ``versioning``: code, data and model versions with git, DVC and the MLflow registry.

The reusable part, promotion and rollback with an audit log, lives in
:mod:`labs.common.registry` (the retraining flow uses it too).
"""
