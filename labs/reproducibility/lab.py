"""Reproducible experiments: the same inputs give the same bytes — and where that breaks.

An experiment is reproducible when everything that decides its result is an *input*: pinned,
recorded, and enough to run it again. This lab trains the churn model on the project's
DVC-tracked data and shows, with numbers:

1. **Same inputs → same bytes.** Two trainings with the same seed give identical metrics and
   an identical model sha256 (the skops file is written deterministically); another seed
   changes both.
2. **Where nondeterminism hides**, each with a measured example and its fix: the BLAS thread
   count (threadpoolctl), worker processes that never see the global seed (``n_jobs``), the
   iteration order of a set under another ``PYTHONHASHSEED``, and float summation order.
3. **Everything is recorded** in the MLflow run: commit and dirty flag, the lock file's hash,
   the data's md5 (DVC's hash), params, seed, platform — and a measured warning: MLflow's
   dataset digest only looks at the first 10,000 rows.
4. **Rebuild from a run id**: the recorded commit is checked out into a git worktree in a
   temporary directory, its data restored with ``dvc checkout``, and that commit's code
   re-trains: metrics and model hash match.
5. **Pipelines and environment**: in a scratch clone, a param change makes ``dvc repro`` re-run
   only the stages that depend on it, and a second ``dvc repro`` is a no-op; the hash-locked
   ``requirements.lock`` is what is installed, and uv rebuilds the same venv from it offline.

Each part the lab demonstrates is a keyword argument of :func:`run` (the experiment, each
hazard's fix, the lineage, the dataset digest, the DVC pipeline, the lock): its
counterfactuals (``counterfactuals.py``) hand it a broken one, and a claim must turn ✗.

The user's checkout is only read: every command that writes runs in a temporary directory.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING, Any

from labs.common.catalogue import topic
from labs.common.paths import project_root
from labs.common.results import LabResult, artifact_path, log_claims
from labs.common.tracking import model_sha256, start_run
from labs.reproducibility import hazards
from labs.reproducibility.claims import Measurements, make_claims
from labs.reproducibility.environment import check_environment, committed_lock
from labs.reproducibility.experiment import HOLDOUT_DATA, TRAIN_DATA, run_experiment
from labs.reproducibility.params import ReproducibilityParams
from labs.reproducibility.pipeline import pipeline_as_committed, repro_twice_after_change
from labs.reproducibility.provenance import digest_blind_spot, lineage_tags, mlflow_dataset_digest
from labs.reproducibility.rebuild import (
    TRAIN_PARAM_PREFIX,
    NotRebuildableError,
    Rebuild,
    rebuild_run,
)
from labs.reproducibility.report import plot_distinct_results, write_provenance_table

if TYPE_CHECKING:  # the worker processes of step 2 import this module: no heavy imports here
    import pandas as pd


QUESTION = topic("reproducibility").question
EXPERIMENT = topic("reproducibility").experiment  # "lab-reproducibility"


def run(
    params: ReproducibilityParams,
    out_dir: Path,
    echo: Callable[[str], None] = lambda _: None,
    source: Path | None = None,
    *,
    experiment: Callable[..., Any] = run_experiment,
    thread_pool: str = "blas",
    task_seeds: hazards.TaskSeeds = hazards.spawned_task_seeds,
    column_order: Callable[[Iterable[str]], list[str]] = sorted,
    exact_sum: Callable[[list[float]], float] = math.fsum,
    lineage: Callable[..., dict[str, str]] = lineage_tags,
    dataset_digest: Callable[[Any], str] = mlflow_dataset_digest,
    edit_pipeline: Callable[[Path], None] = pipeline_as_committed,
    lock: Callable[[Path], str] = committed_lock,
) -> LabResult:
    """Measure every claim; ``source`` is the checkout to read (the project by default).

    The keyword arguments are the parts the lab demonstrates, each the real one by default:
    ``experiment`` trains and evaluates; ``thread_pool`` is the pool threadpoolctl pins,
    ``task_seeds`` seeds the workers' tasks, ``column_order`` orders a set of columns,
    ``exact_sum`` adds floats (the four fixes); ``lineage`` makes the run's tags,
    ``dataset_digest`` is MLflow's digest, ``edit_pipeline`` declares the DVC pipeline in the
    scratch clone, ``lock`` gives the lock file the environment is checked against."""
    import pandas as pd

    from labs.common.data import FEATURES
    from labs.common.model import split_xy

    source = (source or project_root()).resolve()
    out_dir.mkdir(parents=True, exist_ok=True)
    data = {"train": TRAIN_DATA, "holdout": HOLDOUT_DATA}
    with ThreadPoolExecutor(max_workers=3) as background:
        # The slow parts are other processes (DVC stages, uv): they run meanwhile.
        echo(f"Scratch clone: dvc repro after `{params.changed_param}`, then again …")
        dvc_steps = background.submit(
            repro_twice_after_change,
            source,
            params.changed_param,
            params.command_timeout_s,
            edit_pipeline,
        )
        lock_check = background.submit(check_environment, source, params.command_timeout_s, lock)

        # --- 1. Same inputs → same bytes ----------------------------------------------------
        # The experiment is a function of its inputs only. Run it twice with the seed, once
        # with another seed, and compare everything it produced, bit for bit.
        echo(f"Training twice with seed {params.seed}, once with seed {params.other_seed} …")
        train_csv, holdout_csv = source / TRAIN_DATA, source / HOLDOUT_DATA
        first, second, other = (
            experiment(train_csv, holdout_csv, asdict(params.train_params(seed)))
            for seed in (params.seed, params.seed, params.other_seed)
        )

        # --- 2. Where nondeterminism hides --------------------------------------------------
        echo("Hazards: BLAS threads, worker seeds, set order, summation order …")
        blas = hazards.blas_library()
        dots = {
            t: hazards.dot_under_threads(params.blas_vector_size, t, params.seed, pool=thread_pool)
            for t in params.blas_threads
        }
        train = pd.read_csv(train_csv)
        x, y = split_xy(train)
        # n_jobs: worker processes drawing from numpy's global generator …
        correct = (first_model_predictions(params, x, y) == y.to_numpy()).astype(float)
        seeding = hazards.parallel_seeding(
            correct, params.bootstrap_tasks, params.seed, params.n_jobs, task_seeds
        )
        # … and scikit-learn's n_jobs: the same trees, votes added in thread completion order.
        forest = forest_n_jobs(params, x, y)
        # A set of column names iterated under other hash seeds: other column orders, other
        # model bytes (the project's split_xy always selects FEATURES in one order: the fix).
        orders = hazards.set_orders(FEATURES, params.hash_seeds, column_order)
        order_shas = {
            kind: {model_sha_for_columns(params, train, o[kind]) for o in orders}
            for kind in ("unsorted", "sorted")
        }
        sums = hazards.summation_orders(params.summation_values, params.seed, exact_sum=exact_sum)

        # --- 3. Record everything that determines the result --------------------------------
        echo("MLflow's dataset digest vs the data's md5 …")
        digest = digest_blind_spot(
            params.digest_rows, params.digest_changed_from, params.seed, dataset_digest
        )
        echo(f"Logging the run to MLflow (experiment {EXPERIMENT}) …")
        tags = lineage(source, data, blas) | {"model_sha256": first.model_sha256}
        run_id = log_experiment_run(params, first.metrics, tags, train, source)
        recorded = recorded_fields(run_id)

        # --- 4. Rebuild from the run id alone ------------------------------------------------
        echo(f"Rebuilding run {run_id[:8]} from its commit and data in a git worktree …")
        rebuilt = background.submit(rebuild_or_refusal, run_id, source, params.command_timeout_s)
        measured = Measurements(
            first=first, second=second, other=other, dots=dots, blas=blas, seeding=seeding,
            forest=forest, orders=orders, order_shas=order_shas, sums=sums,
            digest=digest, tags=tags, recorded=recorded, rebuild=rebuilt.result(),
            dvc=dvc_steps.result(), environment=lock_check.result(),
        )  # fmt: skip

    # --- 5. What the numbers say -----------------------------------------------------------
    claims = make_claims(params, measured)
    png = plot_distinct_results(measured, out_dir / "distinct_results.png")
    table = write_provenance_table(measured, out_dir / "provenance.md")
    echo("")
    echo(table.read_text())
    import mlflow

    with mlflow.start_run(run_id=run_id):
        log_claims(claims)
        for path in (png, table):
            mlflow.log_artifact(str(path))
    return LabResult(
        lab="reproducibility",
        question=QUESTION,
        claims=claims,
        artifacts=[artifact_path(p) for p in (png, table)],
        params=asdict(params),
        mlflow={"experiment": EXPERIMENT, "run_id": run_id},
    )


# --- helpers -------------------------------------------------------------------------------


def rebuild_or_refusal(run_id: str, source: Path, timeout_s: float) -> Rebuild | str:
    """The rebuild of ``run_id``, or why it was refused (a run that lacks what a rebuild
    needs fails the claim with that reason; it does not stop the lab)."""
    try:
        return rebuild_run(run_id, source, timeout_s)
    except NotRebuildableError as err:
        return str(err)


def first_model_predictions(params: ReproducibilityParams, x: pd.DataFrame, y: pd.Series) -> Any:
    """Training-set predictions of the seeded model (what the bootstrap resamples)."""
    from labs.common.model import build_model

    return build_model(params.train_params()).fit(x, y).predict(x)


def forest_n_jobs(params: ReproducibilityParams, x: pd.DataFrame, y: pd.Series) -> dict[str, Any]:
    """A forest fitted with ``n_jobs=1`` and with ``n_jobs=params.n_jobs`` (same seed): are
    the fitted trees the same bytes, and do the predicted probabilities differ?"""
    from labs.common.model import build_model

    shas, probas = [], []
    for n_jobs in (1, params.n_jobs):
        model = build_model(params.train_params()).set_params(classifier__n_jobs=n_jobs)
        probas.append(model.fit(x, y).predict_proba(x)[:, 1])
        # n_jobs is stored in the model: compare the fitted trees, not the setting
        shas.append(model_sha256(model.set_params(classifier__n_jobs=1)))
    return {
        "fit_identical": shas[0] == shas[1],
        "predict_max_diff": float(abs(probas[0] - probas[1]).max()),
    }


def model_sha_for_columns(
    params: ReproducibilityParams, train: pd.DataFrame, columns: list[str]
) -> str:
    """The model's sha256 when fitted on the feature columns in ``columns``' order."""
    from labs.common.data import TARGET
    from labs.common.model import build_model

    model = build_model(params.train_params()).fit(train[list(columns)], train[TARGET])
    return model_sha256(model)


def log_experiment_run(
    params: ReproducibilityParams,
    metrics: dict[str, float],
    tags: dict[str, str],
    train: pd.DataFrame,
    source: Path,
) -> str:
    """One MLflow run holding everything a rebuild needs: train params (as JSON, so types
    survive), lab params, holdout metrics and the lineage tags; plus MLflow's own dataset
    record, whose digest is shown next to our md5."""
    import mlflow
    import mlflow.data

    train_params = {
        f"{TRAIN_PARAM_PREFIX}{k}": json.dumps(v) for k, v in asdict(params.train_params()).items()
    }
    with start_run(EXPERIMENT, "reproducibility-lab", asdict(params) | train_params) as run:
        mlflow.set_tags(tags)
        mlflow.log_metrics({f"holdout_{k}": v for k, v in metrics.items()})
        dataset = mlflow.data.from_pandas(train, source=str(source / TRAIN_DATA), name="train")
        mlflow.log_input(dataset, context="training")
        return run.info.run_id


def recorded_fields(run_id: str) -> dict[str, str]:
    """Read the run back: the tags and params that pin its inputs, as stored."""
    import mlflow

    run = mlflow.MlflowClient().get_run(run_id)
    params = {f"param.{k}": v for k, v in run.data.params.items()}
    return dict(run.data.tags) | params | {"run_id": run_id}
