"""MLOps interview labs: one package per interview topic, and the shared core in ``common``."""
