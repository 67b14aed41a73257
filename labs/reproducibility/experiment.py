"""One experiment as a pure function of its inputs: data files + training params → metrics and
model bytes. Nothing else (clock, machine, run order) may change the result.

It is also the command a rebuild runs *inside the checked-out commit*, so the code that
rebuilds is the code that was recorded, not today's::

    python -m labs.reproducibility.experiment --train T.csv --holdout H.csv --params '{...}'

prints one JSON line: the metrics, the model's sha256 and where the code was imported from.
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

# The experiment reads the DVC-tracked prepared data of the project's pipeline (dvc.yaml).
TRAIN_DATA = "data/prepared/train.csv"
HOLDOUT_DATA = "data/prepared/holdout.csv"


@dataclass(frozen=True)
class ExperimentResult:
    """What a training run produced: holdout metrics and the model's reproducible sha256."""

    metrics: dict[str, float]
    model_sha256: str


def run_experiment(
    train_csv: Path, holdout_csv: Path, train_params: dict[str, Any]
) -> ExperimentResult:
    """Train the churn model on ``train_csv`` with ``train_params`` (``TrainParams`` fields,
    the seed among them) and evaluate it on ``holdout_csv``."""
    import pandas as pd

    from labs.common.model import TrainParams, evaluate_model, train_model
    from labs.common.tracking import model_sha256

    params = TrainParams(**train_params)
    model = train_model(pd.read_csv(train_csv), params)
    metrics = evaluate_model(model, pd.read_csv(holdout_csv))
    return ExperimentResult(metrics=metrics, model_sha256=model_sha256(model))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m labs.reproducibility.experiment")
    parser.add_argument("--train", type=Path, required=True)
    parser.add_argument("--holdout", type=Path, required=True)
    parser.add_argument("--params", required=True, help="TrainParams as JSON")
    args = parser.parse_args(argv)
    result = run_experiment(args.train, args.holdout, json.loads(args.params))
    import labs

    code_root = str(Path(labs.__file__).resolve().parents[1])
    print(json.dumps({**result.__dict__, "code_root": code_root}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
