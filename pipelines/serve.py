"""Serve the ``retrain`` flow as the deployment ``retrain/retrain`` (blocks; polls for runs).

Started in the background by ``make prefect-up`` (``pipelines.local``); needs
``PREFECT_API_URL`` pointing at a running server.
"""

from __future__ import annotations

from pipelines.retrain import retrain

if __name__ == "__main__":
    retrain.serve(
        name="retrain",
        description="Retrain the churn model when a trigger fires; promote only if better.",
        tags=["mlops-labs"],
    )
