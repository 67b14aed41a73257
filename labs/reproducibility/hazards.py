"""Where nondeterminism hides: four small, measured examples, each with its fix.

Each function returns plain numbers: how many *distinct* results the same computation gave
under a setting nobody thinks of as an input (thread count, worker processes, hash seed,
summation order), before and after the fix. One distinct result means reproducible.
numpy and threadpoolctl only, so worker processes start fast.
"""

from __future__ import annotations

import json
import math
import multiprocessing
import os
import subprocess
import sys
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import Executor, ProcessPoolExecutor
from typing import Any

import numpy as np


def blas_library() -> str:
    """The BLAS numpy calls, e.g. ``openblas 0.3.31 (2 threads)``; "none" if none is found."""
    from threadpoolctl import threadpool_info

    blas = [i for i in threadpool_info() if i.get("user_api") == "blas"]
    if not blas:
        return "none"
    # scipy and scikit-learn may load their own BLAS too: name numpy's, the one `a @ b` uses
    info = next((i for i in blas if "numpy" in i.get("filepath", "")), blas[0])
    return f"{info['internal_api']} {info.get('version')} ({info['num_threads']} threads)"


def dot_under_threads(
    size: int, threads: int, seed: int, repeats: int = 2, pool: str = "blas"
) -> list[float]:
    """``a @ b`` of two seeded vectors, ``repeats`` times, with the thread pool ``pool``
    (threadpoolctl's ``user_api``: ``blas`` is the one ``a @ b`` uses) limited to ``threads``.

    A threaded BLAS splits the sum into one partial sum per thread and adds the partials:
    another thread count is another summation order, hence other last bits.
    """
    from threadpoolctl import threadpool_limits

    rng = np.random.default_rng(seed)
    a, b = rng.standard_normal((2, size))
    with threadpool_limits(limits=threads, user_api=pool):
        return [float(a @ b) for _ in range(repeats)]


def _bootstrap_task(values: np.ndarray, draws: int, seed: Any) -> float:
    """Mean of one bootstrap resample of ``values``. ``seed=None``: numpy's global generator
    (what ``np.random.seed`` in the parent was supposed to control)."""
    if seed is None:
        sample = np.random.choice(values, size=draws, replace=True)
    else:
        sample = np.random.default_rng(seed).choice(values, size=draws, replace=True)
    return float(sample.mean())


def spawned_task_seeds(seed: int, tasks: int) -> list[Any]:
    """One independent child seed per task, all derived from ``seed`` (the fix)."""
    return list(np.random.SeedSequence(seed).spawn(tasks))


TaskSeeds = Callable[[int, int], list[Any]]


def bootstrap_interval(
    values: np.ndarray,
    tasks: int,
    seed: int,
    pool: Executor | None,
    spawn_seeds: bool,
    task_seeds: TaskSeeds = spawned_task_seeds,
) -> tuple[float, float]:
    """A 90 % bootstrap interval of the mean of ``values`` from ``tasks`` resamples, run in
    ``pool`` (worker processes; ``None``: one after another in this process).

    ``spawn_seeds=False`` is the common bug: ``np.random.seed(seed)`` in the parent, workers
    draw from numpy's global generator — which in a new process is seeded from the OS.
    ``spawn_seeds=True`` is the fix: ``task_seeds`` gives one seed per *task*
    (``SeedSequence.spawn``), so neither the worker count nor the scheduling matters.
    """
    np.random.seed(seed)  # the well-meant global seed
    seeds: list[Any] = task_seeds(seed, tasks) if spawn_seeds else [None] * tasks
    draws = len(values)
    if pool is None:
        means = [_bootstrap_task(values, draws, s) for s in seeds]
    else:
        means = list(pool.map(_bootstrap_task, [values] * tasks, [draws] * tasks, seeds))
    low, high = np.quantile(means, [0.05, 0.95])
    return float(low), float(high)


def parallel_seeding(
    values: np.ndarray,
    tasks: int,
    seed: int,
    n_jobs: int,
    task_seeds: TaskSeeds = spawned_task_seeds,
) -> dict[str, Any]:
    """The bootstrap interval computed twice in this process and twice on a pool of
    ``n_jobs`` worker processes, first with the global seed, then with spawned seeds.

    Each call re-seeds the global generator, so in-process repeats are identical; in the
    workers the seed never arrives, so every repeat (every program run) differs.
    """
    context = multiprocessing.get_context("spawn")
    runs: dict[str, list[tuple[float, float]]] = {}
    with ProcessPoolExecutor(max_workers=n_jobs, mp_context=context) as pool:
        for spawn, kind in ((False, "global"), (True, "spawned")):
            for where, executor in (("in_process", None), ("workers", pool)):
                runs[f"{kind}_{where}"] = [
                    bootstrap_interval(values, tasks, seed, executor, spawn, task_seeds)
                    for _ in range(2)
                ]
    return {
        "n_jobs": n_jobs,
        "runs": runs,
        "distinct_global_in_process": len(set(runs["global_in_process"])),
        "distinct_global_workers": len(set(runs["global_workers"])),
        "distinct_spawned": len(set(runs["spawned_in_process"] + runs["spawned_workers"])),
    }


# In a fresh interpreter: the set's own order, and the order the fix (a function named by
# module and name, imported there) gives it.
_SET_ORDER = (
    "import importlib, json, sys; module, name, *names = sys.argv[1:]; names = set(names); "
    "fix = getattr(importlib.import_module(module), name); "
    "print(json.dumps([list(names), list(fix(names))]))"
)


def set_orders(
    names: Sequence[str],
    hash_seeds: Sequence[int],
    column_order: Callable[[Iterable[str]], list[str]] = sorted,
) -> list[dict[str, list[str]]]:
    """Iterate a set of column names in a fresh interpreter per ``PYTHONHASHSEED``: the
    unsorted order (what ``for c in set(...)`` gives) and the one ``column_order`` (a
    module-level function; ``sorted``, the fix) gives."""
    orders = []
    where = [column_order.__module__, column_order.__qualname__]
    for hash_seed in hash_seeds:
        env = {**os.environ, "PYTHONHASHSEED": str(hash_seed)}
        out = subprocess.run(
            [sys.executable, "-c", _SET_ORDER, *where, *names],
            env=env, capture_output=True, text=True, timeout=60, check=True,
        ).stdout  # fmt: skip
        unsorted, fixed = json.loads(out)
        orders.append({"hash_seed": hash_seed, "unsorted": unsorted, "sorted": fixed})
    return orders


def summation_orders(
    size: int, seed: int, orders: int = 4, exact_sum: Callable[[list[float]], float] = math.fsum
) -> dict[str, Any]:
    """The same numbers added in ``orders`` different orders: left to right (``sum``),
    numpy's pairwise sum, and ``exact_sum`` (``math.fsum``, the fix: exactly rounded, so
    order-independent)."""
    rng = np.random.default_rng(seed)
    # Amounts of very different magnitude, as in real data (a few large, many small).
    values = rng.lognormal(mean=3.0, sigma=2.0, size=size)
    permutations = [values] + [values[rng.permutation(size)] for _ in range(orders - 1)]
    plain = [sum(v.tolist()) for v in permutations]
    pairwise = [float(np.sum(v)) for v in permutations]
    exact = [exact_sum(v.tolist()) for v in permutations]
    return {
        "orders": orders,
        "distinct_sum": len(set(plain)),
        "distinct_np_sum": len(set(pairwise)),
        "distinct_fsum": len(set(exact)),
        "max_abs_diff_sum": max(plain) - min(plain),
        "relative_diff_sum": (max(plain) - min(plain)) / abs(exact[0]),
    }
