"""Prefect flows that compose lab code as tasks: ``retrain`` (and, later, ``monitor``)."""
