"""The cicd lab's counterfactuals: a broken gate, trigger or release step, each turning claims ✗.

Each is handed to :func:`labs.cicd.lab.run` as a replacement part (or a wrong setting), so it
runs through the lab's real path: real retrains, MLflow's threshold validation, a real git
diff, the real registry.
"""

from __future__ import annotations

import statistics
from collections.abc import Iterable, Sequence
from typing import Any

from labs.cicd.changes import Trained
from labs.cicd.gate import PRODUCTION, STAGING
from labs.cicd.lab import CicdParams, run
from labs.cicd.workflow import load_workflow, triggered_by
from labs.common.counterfactuals import Counterfactual, LabCounterfactuals
from labs.common.registry import promote

# What many workflows filter on: code only. A data version lives in dvc.lock, outside it.
CODE_PATHS = ["labs/**", "pipelines/**", "tests/**", "pyproject.toml", "requirements.lock"]


def any_gain(seed_scores: Sequence[float], sigmas: float) -> tuple[float, float]:
    """No margin: a candidate that beats the champion by any amount is promoted."""
    return statistics.stdev(seed_scores), 1e-9


def offline_scores(trained: Trained) -> dict[str, float]:
    """The gate reads the notebook's score (a random split of the training table) for
    everything, so the offline–holdout gap it checks is zero by construction."""
    return {
        "roc_auc": trained.offline["roc_auc"],
        "accuracy": trained.offline["accuracy"],
        "offline_roc_auc": trained.offline["roc_auc"],
        "offline_holdout_gap": 0.0,
    }


def code_only_trigger(changed: Iterable[str]) -> dict[str, bool]:
    """The project's workflow with its path filters cut down to code: data changes are ignored."""
    workflow = load_workflow()
    for event in ("push", "pull_request"):
        workflow["on"][event]["paths"] = CODE_PATHS
    return triggered_by(workflow, changed)


def promote_unchecked(
    client: Any, name: str, version: str | int, *, reason: str, audit_log: Any
) -> Any:
    """Production moves to whatever version is asked for: no check that the gate staged it."""
    return promote(
        client, name, version, reason=reason, audit_log=audit_log, alias=PRODUCTION, retire=STAGING
    )


COUNTERFACTUALS = LabCounterfactuals(
    "cicd",
    "cicd",
    CicdParams,
    run,
    (
        Counterfactual(
            "no-promotion-margin",
            "any gain over the champion promotes",
            ("margin_from_seed_noise",),
            "The gate promotes a candidate that beats the champion by any amount: a retrain "
            "of the same code on another sample wins about half the time by luck.",
            components={"margin_rule": any_gain},
        ),
        Counterfactual(
            "margin-set-by-feel",
            "a margin of 20σ, far above the measured noise",
            ("good_change_staged",),
            "The margin is set by feel at 20 standard deviations of seed noise: a real "
            "improvement cannot clear it, so nothing good is ever staged.",
            params={"noise_sigmas": 20.0},
        ),
        Counterfactual(
            "gate-on-offline-score",
            "the gate reads the offline (notebook) score",
            ("degrading_changes_fail", "leak_caught_by_time_split"),
            "The gate scores candidates on a random split of their own training table instead "
            "of the next month: the leak and the preprocessing bug look fine and are staged.",
            components={"gate_scores": offline_scores},
        ),
        Counterfactual(
            "workflow-ignores-data",
            "the workflow's path filter lists only code",
            ("data_change_triggers_gate",),
            "The workflow runs only when code changes; a new data version changes dvc.lock "
            "alone, so nothing retrains and the gate never sees the new data.",
            components={"trigger": code_only_trigger},
        ),
        Counterfactual(
            "production-without-staging-check",
            "production moves to any version asked for",
            ("production_is_separate_audited_step",),
            "The production step promotes whatever version it is given, without checking that "
            "the gate staged it: a model registered by hand goes live.",
            components={"promote": promote_unchecked},
        ),
    ),
    audit_params={"train_rows": 1500, "holdout_rows": 1000, "new_data_rows": 1500},
)
