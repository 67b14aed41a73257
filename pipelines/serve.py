"""Serve the flows as deployments (blocks; polls for runs): ``retrain/retrain`` and
``monitor/monitor``.

    prefect deployment run retrain/retrain
    prefect deployment run monitor/monitor --param 'days=[12]'

Started in the background by ``make prefect-up`` (``pipelines.local``); needs
``PREFECT_API_URL`` pointing at a running server.

    python -m pipelines.serve --pool labs-pool   # make stack-up (pipelines.stack)

registers the same deployments on a work pool instead and returns: the pool's workers run
them. The flows are found by module path (``pipelines.retrain.retrain``), so a worker needs
the project installed, not this checkout's files.
"""

from __future__ import annotations

from typing import Any

from pipelines.monitor import monitor
from pipelines.retrain import retrain

TAGS = ["mlops-labs"]


def deployments(**options: Any) -> list[Any]:
    """The deployments, each named like its flow (``<flow>/<flow>``); ``options`` go to
    ``Flow.to_deployment`` (a work pool, an entrypoint type)."""
    return [
        retrain.to_deployment(
            name="retrain",
            description="Retrain the churn model when a trigger fires; promote only if better.",
            tags=TAGS,
            **options,
        ),
        monitor.to_deployment(
            name="monitor",
            description="Check logged predictions day by day for drift and late-labelled "
            "quality; alert, and start retraining on a new quality incident.",
            tags=TAGS,
            **options,
        ),
    ]


def apply_to_pool(pool: str) -> list[str]:
    """Register :func:`deployments` on work pool ``pool`` (which must exist); their names."""
    from prefect.deployments.runner import EntrypointType

    names = []
    for deployment in deployments(work_pool_name=pool, entrypoint_type=EntrypointType.MODULE_PATH):
        deployment.apply(work_pool_name=pool)
        names.append(f"{deployment.flow_name}/{deployment.name}")
    return names


if __name__ == "__main__":
    import sys

    from pipelines.entry import run_flow_cli

    if sys.argv[1:2] == ["--pool"] and len(sys.argv) == 3:
        sys.exit(run_flow_cli("serve", lambda: " ".join(apply_to_pool(sys.argv[2]))))
    else:
        from prefect import serve

        sys.exit(run_flow_cli("serve", lambda: serve(*deployments())))
