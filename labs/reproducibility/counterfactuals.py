"""The reproducibility lab's counterfactuals: plausible broken parts, each run through the lab.

Each replaces one part :func:`labs.reproducibility.lab.run` takes as a keyword argument —
the experiment, a hazard's fix, the run's lineage, MLflow's digest, the DVC pipeline, the
lock file — and names the claims that must then turn ✗ (``python -m labs.reproducibility
--counterfactual NAME``; ``--audit`` runs them all).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from labs.common.counterfactuals import Counterfactual, LabCounterfactuals
from labs.reproducibility.environment import LOCK_FILE
from labs.reproducibility.experiment import ExperimentResult
from labs.reproducibility.lab import run
from labs.reproducibility.params import ReproducibilityParams

# --- the broken parts ------------------------------------------------------------------------


def _experiment(
    train_csv: Path, holdout_csv: Path, train_params: dict[str, Any], random_state: Any
) -> ExperimentResult:
    """The lab's experiment with the classifier's ``random_state`` set to ``random_state``."""
    import pandas as pd

    from labs.common.model import TrainParams, build_model, evaluate_model, split_xy
    from labs.common.tracking import model_sha256

    model = build_model(TrainParams(**train_params))
    model.set_params(classifier__random_state=random_state)
    model.fit(*split_xy(pd.read_csv(train_csv)))
    metrics = evaluate_model(model, pd.read_csv(holdout_csv))
    return ExperimentResult(metrics=metrics, model_sha256=model_sha256(model))


def experiment_without_seed(
    train_csv: Path, holdout_csv: Path, train_params: dict[str, Any]
) -> ExperimentResult:
    """The forest is built with ``random_state=None``: every fit draws from the OS."""
    return _experiment(train_csv, holdout_csv, train_params, None)


def experiment_ignoring_the_seed(
    train_csv: Path, holdout_csv: Path, train_params: dict[str, Any]
) -> ExperimentResult:
    """The seed in the params never reaches the model: ``random_state=0`` is hard-coded."""
    return _experiment(train_csv, holdout_csv, train_params, 0)


def unseeded_task_seeds(seed: int, tasks: int) -> list[Any]:
    """One ``SeedSequence`` per task — without the parent's seed, so from OS entropy."""
    return [np.random.SeedSequence() for _ in range(tasks)]


def order_of_first_appearance(names: Any) -> list[str]:
    """``dict.fromkeys``: de-duplicates "keeping the order" — the set's own order."""
    return list(dict.fromkeys(names))


def left_to_right_sum(values: list[float]) -> float:
    """``sum()``: adds in the order the values come."""
    return sum(values)


def lineage_commit_only(root: Path, data_files: dict[str, str], blas: str) -> dict[str, str]:
    """What MLflow tags by itself: the git commit. No dirty flag, no data hash, no lock hash,
    no platform."""
    from labs.common.results import git_state

    return {"git_commit": str(git_state(root)[0])}


def digest_of_every_row(frame: Any) -> str:
    """A dataset digest that hashes every row (a content hash), 8 hex digits like MLflow's."""
    import hashlib

    return hashlib.sha256(frame.to_csv(index=False).encode()).hexdigest()[:8]


def generate_pulls_latest_data(repo: Path) -> None:
    """The ``generate`` stage fetches "the latest" data, which DVC cannot hash before running
    it: declared ``always_changed``, as such a stage must be."""
    path = repo / "dvc.yaml"
    text = path.read_text()
    if "\n  generate:\n" not in text:
        raise ValueError(f"{path} has no generate stage to change")
    path.write_text(text.replace("\n  generate:\n", "\n  generate:\n    always_changed: true\n", 1))


def lock_resolved_without_hashes(root: Path) -> str:
    """The lock as ``uv pip compile`` writes it without ``--generate-hashes``: versions
    pinned, the files they stand for not."""
    lines = (root / LOCK_FILE).read_text().splitlines()
    kept = [ln.removesuffix(" \\") for ln in lines if not ln.strip().startswith("--hash=")]
    return "\n".join(kept) + "\n"


# --- the counterfactuals ---------------------------------------------------------------------

NO_SEED = Counterfactual(
    "no-seed",
    "the model is trained without a seed",
    ("same_seed_same_bytes", "rebuilt_from_run_id"),
    "The forest is built with random_state=None: two trainings on the same data give two "
    "models, and no rebuild can match the recorded one.",
    components={"experiment": experiment_without_seed},
)
SEED_IGNORED = Counterfactual(
    "seed-never-reaches-the-model",
    "the seed parameter is ignored (random_state=0 hard-coded)",
    ("other_seed_other_result",),
    "Training hard-codes random_state=0: runs repeat, but 'seed' in params.yaml changes "
    "nothing, so the run records a seed that did not decide the result.",
    components={"experiment": experiment_ignoring_the_seed},
)
UNPINNED = Counterfactual(
    "threads-and-worker-seeds-unpinned",
    "the thread limit is set on the OpenMP pool; worker tasks get unseeded generators",
    ("blas_threads_change_bits", "workers_ignore_the_global_seed"),
    "threadpoolctl limits the OpenMP pool, which numpy's BLAS does not use, so the thread "
    "count is not under control; each bootstrap task gets SeedSequence() without the seed.",
    components={"thread_pool": "openmp", "task_seeds": unseeded_task_seeds},
)
ORDER = Counterfactual(
    "order-left-to-chance",
    "columns de-duplicated with dict.fromkeys; floats added with sum()",
    ("set_order_depends_on_hash_seed", "summation_order_changes_sums"),
    "The 'fix' for the set of columns is dict.fromkeys (it keeps the set's hash order), and "
    "totals are added with sum() instead of math.fsum: both depend on an order nobody chose.",
    components={"column_order": order_of_first_appearance, "exact_sum": left_to_right_sum},
)
COMMIT_ONLY = Counterfactual(
    "lineage-commit-only",
    "the run records only the git commit",
    ("run_records_every_input", "rebuilt_from_run_id"),
    "The run is tagged with its commit, as MLflow does by itself, but not the dirty flag, "
    "the data's md5, the lock's hash or the platform: nobody can say what it trained on.",
    components={"lineage": lineage_commit_only},
)
FULL_DIGEST = Counterfactual(
    "digest-hashes-every-row",
    "a dataset digest that hashes every row",
    ("mlflow_digest_sees_first_rows_only",),
    "If MLflow's digest hashed every row (a content hash), its blind spot would be gone: the "
    "claim measures the library's digest and must notice.",
    components={"dataset_digest": digest_of_every_row},
)
UNVERSIONED = Counterfactual(
    "data-not-versioned",
    "the generate stage pulls the latest data (always_changed)",
    ("param_change_reruns_dependents_only", "second_repro_is_a_noop"),
    "The first stage fetches 'the latest' data instead of a versioned file, so DVC must "
    "re-run it on every dvc repro: a param change re-runs more than depends on it, and a "
    "second repro is no longer a no-op.",
    components={"edit_pipeline": generate_pulls_latest_data},
)
NO_HASHES = Counterfactual(
    "lock-without-hashes",
    "requirements.lock resolved without --generate-hashes",
    ("lock_file_reproducible",),
    "The lock pins versions but not the files: an install cannot verify what it downloads, "
    "and uv pip sync --require-hashes refuses it.",
    components={"lock": lock_resolved_without_hashes},
)

COUNTERFACTUALS = LabCounterfactuals(
    "reproducibility",
    "reproducibility",
    ReproducibilityParams,
    run,
    (NO_SEED, SEED_IGNORED, UNPINNED, ORDER, COMMIT_ONLY, FULL_DIGEST, UNVERSIONED, NO_HASHES),
    audit_params={
        "n_estimators": 8,
        "bootstrap_tasks": 6,
        "hash_seeds": (0, 1, 2),
        "summation_values": 5_000,
        "digest_rows": 10_200,
        "command_timeout_s": 180.0,
    },
)
