"""The ``retrain`` flow: trigger → validate → train a challenger → compare → promote or keep.

    prefect deployment run retrain/retrain                      # month 2 of the stream
    prefect deployment run retrain/retrain --param month=3      # the month concept drift hits
    prefect deployment run retrain/retrain --param force=true
    python -m pipelines.retrain --month 3     # one run here, no deployment (see main)

The steps and their wiring live in :mod:`labs.retraining.steps` (the lab runs the same wiring
with plain functions, no server). Here each step becomes a Prefect task — retries with backoff
where a step can fail transiently — and the flow publishes its decision: in the run's logs and
as a Markdown artifact (``retrain-decision``) shown on the flow run's page.
"""

# No `from __future__ import annotations` here: Prefect builds its parameter model from the
# flow signature, and string annotations (Annotated[...]) would not resolve.
import argparse
import json
import sys
from typing import Annotated, Any

from prefect import flow, get_run_logger
from prefect.artifacts import create_markdown_artifact
from pydantic import Field

from labs.common.registry import MODEL_NAME
from labs.retraining import steps
from labs.retraining.steps import RetrainConfig, Steps, run_retraining
from pipelines.tasks import Fraction, NonZeroFraction, as_task

ARTIFACT_KEY = "retrain-decision"


def task_steps() -> Steps:
    """The steps as Prefect tasks: retries with backoff where a failure can be transient (file
    and registry I/O, SQLite locks); none where a retry would only repeat a verdict."""
    return Steps(
        load_batch=as_task(steps.load_batch, retries=3),
        check_batch=as_task(steps.check_batch),
        load_reference=as_task(steps.load_reference, retries=3),
        load_champion=as_task(steps.load_champion, retries=3),
        decide=as_task(steps.decide),
        train_challenger=as_task(steps.train_challenger),
        register_challenger=as_task(steps.register_challenger, retries=3),
        promote_or_keep=as_task(steps.promote_or_keep, retries=3),
    )


@flow(name="retrain", log_prints=True, validate_parameters=True)
def retrain(
    month: Annotated[int, Field(ge=1)] = 2,
    batch_path: str | None = None,
    force: bool = False,
    drift_share_threshold: NonZeroFraction | None = None,
    quality_threshold: Fraction | None = None,
    min_new_rows: Annotated[int, Field(ge=1)] | None = None,
    margin: Annotated[float, Field(ge=0, lt=1)] | None = None,
    absolute_floor: Fraction | None = None,
    label_noise: Annotated[float, Field(ge=0, le=0.5)] = 0.0,
    model_name: str = MODEL_NAME,
) -> dict[str, Any]:
    """Retrain the churn model if a trigger fires; promote the challenger only if it is better.

    Unset thresholds come from ``params.yaml`` → ``retraining``.
    """
    logger = get_run_logger()
    config = RetrainConfig.from_params(
        month=month,
        batch_path=batch_path,
        force=force,
        drift_share_threshold=drift_share_threshold,
        quality_threshold=quality_threshold,
        min_new_rows=min_new_rows,
        margin=margin,
        absolute_floor=absolute_floor,
        label_noise=label_noise,
        model_name=model_name,
    )
    outcome = run_retraining(config, task_steps(), log=logger.info)
    create_markdown_artifact(
        key=ARTIFACT_KEY,
        markdown=outcome.markdown(),
        description=f"{model_name}: {outcome.action}",
    )
    return outcome.to_dict()


def main(argv: list[str] | None = None) -> int:
    """One run of the flow in this process (:func:`pipelines.entry.run_flow_cli`): against
    ``PREFECT_API_URL`` if set, else a temporary server that lives exactly as long as the run.
    Exit 0 when it completed, 130 on Ctrl-C or SIGTERM (its MLflow run then ends KILLED)."""
    from pipelines.entry import run_flow_cli

    parser = argparse.ArgumentParser(prog="python -m pipelines.retrain", description=__doc__)
    parser.add_argument("--month", type=int, default=2)
    parser.add_argument("--batch-path")
    parser.add_argument("--force", action="store_true")
    parser.add_argument("--model-name", default=MODEL_NAME)
    args = parser.parse_args(argv)

    def run() -> str:
        outcome = retrain(
            month=args.month,
            batch_path=args.batch_path,
            force=args.force,
            model_name=args.model_name,
        )
        return json.dumps(outcome, default=str, indent=2)

    return run_flow_cli("retrain", run)


if __name__ == "__main__":
    sys.exit(main())
