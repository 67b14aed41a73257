"""Serve the flows as deployments (blocks; polls for runs): ``retrain/retrain`` and
``monitor/monitor``.

    prefect deployment run retrain/retrain
    prefect deployment run monitor/monitor --param 'days=[12]'

Started in the background by ``make prefect-up`` (``pipelines.local``); needs
``PREFECT_API_URL`` pointing at a running server.
"""

from __future__ import annotations

from typing import Any

from pipelines.monitor import monitor
from pipelines.retrain import retrain

TAGS = ["mlops-labs"]


def deployments() -> list[Any]:
    """The served deployments, each named like its flow (``<flow>/<flow>``)."""
    return [
        retrain.to_deployment(
            name="retrain",
            description="Retrain the churn model when a trigger fires; promote only if better.",
            tags=TAGS,
        ),
        monitor.to_deployment(
            name="monitor",
            description="Check logged predictions day by day for drift and late-labelled "
            "quality; alert, and start retraining on a new quality incident.",
            tags=TAGS,
        ),
    ]


if __name__ == "__main__":
    import sys

    from prefect import serve

    from pipelines.entry import run_flow_cli

    sys.exit(run_flow_cli("serve", lambda: serve(*deployments())))
