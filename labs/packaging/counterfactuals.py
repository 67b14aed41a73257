"""The packaging lab's counterfactuals: packages, loaders and deliveries with one broken part,
each run through the lab's own ``run()`` — its claims must catch every one.

- ``onnx-done-halfway``: the ONNX export skips the scaler, and the ONNX service still imports
  the training stack to build its inputs;
- ``loaders-trust-the-file``: skops trusts whatever a file asks for under a "standard" module
  prefix, an ONNX wrapper runs an ``on_load`` metadata hook, and the planted pickle keeps its
  payload as a plain string (so it carries no code to run);
- ``serving-shortcuts``: the REST image retrains the model at start-up, the Lambda handler
  builds the app on every call, the Dockerfile installs the serving stack by name, as root.

Three counterfactuals, several broken parts each: every one is a whole run of the lab (fresh
processes, a server), and the audit of all of them must fit in about a minute. The parts that
run inside the fresh measuring processes live in :mod:`labs.packaging.shortcuts`.
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import joblib

from labs.common.counterfactuals import Counterfactual, LabCounterfactuals
from labs.packaging import shortcuts
from labs.packaging.container import SERVING_STACK
from labs.packaging.formats import payload_code, write_onnx
from labs.packaging.lab import PackagingParams, run


def write_onnx_without_scaler(model: Any, path: Path) -> Path:
    """The export that converts the pipeline with its numeric scaler left out: the graph feeds
    raw numbers to weights (or split thresholds) learnt on standardised ones."""
    unscaled = copy.deepcopy(model)
    pre = unscaled.steps[0][1]
    pre.transformers_ = [
        (name, "passthrough" if name == "numeric" else step, columns)
        for name, step, columns in pre.transformers_
    ]
    return write_onnx(unscaled, path)


def write_planted_pickle_as_data(model: Any, path: Path, marker: Path) -> Path:
    """A planted pickle whose payload is stored as a plain string attribute: unpickling
    restores the text and calls nothing."""
    evil = copy.deepcopy(model)
    evil.steps[-1][1].__dict__["_metadata"] = payload_code(marker)
    joblib.dump(evil, path)
    return path


def retrained_at_start(model: Any, params: PackagingParams) -> Any:
    """The REST image that trains its own model at start-up, on the data it finds then,
    instead of serving the artefact that was evaluated."""
    from labs.common.data import make_churn_data
    from labs.common.model import TrainParams, train_model

    return train_model(
        make_churn_data(params.train_rows, seed=params.seed + 100), TrainParams(seed=params.seed)
    )


def render_dockerfile_by_name(lock_text: str) -> str:
    """The tutorial Dockerfile: the serving stack installed by name (whatever is newest at
    build), no user, no health check."""
    return (
        "FROM python:3.11-slim\n"
        "WORKDIR /app\n"
        f"RUN pip install {' '.join(SERVING_STACK)}\n"
        "COPY labs /app/labs\n"
        'CMD ["python", "-m", "labs.common.serving.server", "--host", "0.0.0.0"]\n'
    )


COUNTERFACTUALS = LabCounterfactuals(
    "packaging",
    "packaging",
    PackagingParams,
    run,
    (
        Counterfactual(
            "onnx-done-halfway",
            "ONNX exported without the scaler, served through the training stack",
            (
                "every_package_predicts_the_same",
                "float32_trees_differ_a_little",
                "onnx_loads_and_scores_fastest",
            ),
            "The export converts the pipeline with its numeric scaler left out, so the graph "
            "feeds raw numbers to weights learnt on standardised ones; and the ONNX service "
            "imports scikit-learn, pandas and skl2onnx to build its inputs.",
            components={
                "onnx_writer": write_onnx_without_scaler,
                "onnx_loader": shortcuts.onnx_through_the_training_stack,
            },
        ),
        Counterfactual(
            "loaders-trust-the-file",
            "loaders that trust what a file asks for; an inert planted pickle",
            ("pickle_runs_planted_code", "skops_refuses_planted_code", "onnx_carries_no_code"),
            "skops trusts every type a file asks for under 'sklearn.', 'numpy.' or 'builtins.'; "
            "the ONNX wrapper runs an 'on_load' metadata entry as a start-up hook; and the "
            "planted pickle keeps its payload as a plain string, which runs nothing.",
            components={
                "skops_loader": shortcuts.skops_trusting_prefixes,
                "onnx_loader": shortcuts.onnx_with_on_load_hook,
                "pickle_planter": write_planted_pickle_as_data,
            },
        ),
        Counterfactual(
            "serving-shortcuts",
            "a retrained REST model, a handler built per call, a tutorial Dockerfile",
            (
                "rest_app_serves_the_same_model",
                "serverless_cold_start_dominates",
                "own_dockerfile_is_reviewable",
            ),
            "The REST image trains its own model at start-up instead of serving the evaluated "
            "artefact; the Lambda handler builds the app inside the function, on every call; "
            "the Dockerfile installs the serving stack by name and runs as root.",
            components={
                "served_model": retrained_at_start,
                "lambda_handler": shortcuts.handler_built_per_call,
                "dockerfile": render_dockerfile_by_name,
            },
        ),
    ),
    audit_params={
        "train_rows": 800,
        "parity_rows": 600,
        "batch_rows": 200,
        "one_row_repeats": 5,
        "batch_repeats": 2,
        "forest_trees": 20,
        "parallel_probes": 2,
    },
)
