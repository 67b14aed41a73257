"""Team work: teammates' processes register versions of the same model at the same moment.

Each writer is a separate interpreter holding its own model file; one more holds the first
writer's bytes (a teammate re-running the same registration at that moment). All are released
by one start signal and register through :func:`labs.common.registration.register_version`,
the one find-or-register path of the project (keyed by the model's sha256; the search and the
registration happen under one lock, a compare-and-set). Each records when its registration
started and ended, so the run shows the windows really overlapped. Afterwards every version
they made is loaded back from the registry and must serve exactly its own writer's model:
nothing overwritten, no number reused, one version for the same bytes.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from labs.common.processes import stop_process_group
from labs.common.registration import register_version
from labs.common.registry import CHAMPION, alias_version, retry_on_locked
from labs.versioning.models import EXPERIMENT, predict

if TYPE_CHECKING:
    import pandas as pd
    from mlflow import MlflowClient

# A writer is a separate interpreter (not multiprocessing): it needs nothing from the caller's
# __main__, so run() works the same from `python -m`, pytest or a notebook.
_WRITER = (
    "import sys; from labs.versioning.writers import writer_main; "
    "sys.exit(writer_main(sys.argv[1:]))"
)
START_TIMEOUT_S = 120


def function_path(fn: Callable[..., Any]) -> str:
    """``module:name`` of a module-level function: how a writer process is told which to call."""
    return f"{fn.__module__}:{fn.__qualname__}"


def resolve(path: str) -> Callable[..., Any]:
    """The function named by :func:`function_path`."""
    import importlib

    module, _, name = path.partition(":")
    return getattr(importlib.import_module(module), name)


def writer_main(argv: Sequence[str]) -> int:
    """One teammate's process: ``NAME WRITER MODEL_FILE GATE_DIR REGISTER WRITERS``; waits for
    ``GATE_DIR/go`` and for all ``WRITERS`` to start, then registers with the function
    ``REGISTER`` names (``module:name``)."""
    import mlflow

    from labs.common.tracking import (
        configure_tracking,
        file_sha256,
        get_or_create_experiment,
        load_model_file,
    )

    name, writer, model_file, gate = argv[0], int(argv[1]), Path(argv[2]), Path(argv[3])
    register_with, writers = resolve(argv[4]), int(argv[5])
    model = load_model_file(model_file)
    configure_tracking()
    client = mlflow.MlflowClient()
    get_or_create_experiment(EXPERIMENT)  # imports and the first DB access happen before the race
    (gate / f"ready-{writer}").touch()
    _wait_for(lambda: (gate / "go").exists(), f"writer {writer}: no start signal in {gate}")
    # A barrier: each writer records its start, then registers only once every writer has
    # started — so on a busy machine, too, all registration windows overlap, and the start
    # and end times each writer records show it.
    started = time.time()
    (gate / f"started-{writer}").touch()
    _wait_for(
        lambda: all((gate / f"started-{i}").exists() for i in range(writers)),
        f"writer {writer}: not every writer started",
    )

    def register() -> tuple[str, bool]:
        return register_with(
            client, name, model, experiment=EXPERIMENT, run_name=f"concurrent-writer-{writer}"
        )

    (version, created), retries = retry_on_locked(register)
    result = {
        "writer": writer,
        "version": version,
        "created": created,
        "model_sha256": file_sha256(model_file),
        "started": started,
        "ended": time.time(),
        "retries": retries,
    }
    (gate / f"result-{writer}.json").write_text(json.dumps(result))
    return 0


def _wait_for(done: Callable[[], bool], what: str) -> None:
    deadline = time.monotonic() + START_TIMEOUT_S
    while not done():
        if time.monotonic() > deadline:
            raise TimeoutError(what)
        time.sleep(0.002)


def register_concurrently(
    client: MlflowClient,
    name: str,
    model_files: Sequence[Path],
    x: pd.DataFrame,
    gate: Path,
    env: Mapping[str, str],
    timeout_s: float,
    register_with: Callable[..., tuple[str, bool]] = register_version,
) -> dict[str, Any]:
    """Writers in separate processes register at once — one per model file, plus one more with
    the first file's bytes — through ``register_with``; then check every version they made,
    and that registering the first writer's bytes again finds its version (no duplicate)."""
    from labs.common.tracking import load_model_file

    # The last process holds the first writer's bytes: the race compare-and-set must win.
    model_files = [*model_files, model_files[0]]
    n = len(model_files)
    distinct_files = n - 1
    count_before = len(client.search_model_versions(f"name='{name}'"))
    champion_before = alias_version(client, name, CHAMPION)
    gate.mkdir(parents=True, exist_ok=True)
    logs = [gate / f"writer-{i}.log" for i in range(n)]
    procs = []
    try:
        for i, f in enumerate(model_files):
            with logs[i].open("w") as log:  # a file, not a pipe: a chatty writer never blocks
                procs.append(
                    subprocess.Popen(
                        [
                            sys.executable,
                            "-c",
                            _WRITER,
                            name,
                            str(i),
                            str(f),
                            str(gate),
                            function_path(register_with),
                            str(n),
                        ],  # fmt: skip
                        env=dict(env),
                        stdout=log,
                        stderr=subprocess.STDOUT,
                        start_new_session=True,
                    )
                )
        # Release all writers at once, when each has imported MLflow and loaded its model.
        deadline = time.monotonic() + timeout_s
        while not all((gate / f"ready-{i}").exists() for i in range(n)):
            if any(p.poll() is not None for p in procs) or time.monotonic() > deadline:
                break
            time.sleep(0.005)
        (gate / "go").touch()
        for i, proc in enumerate(procs):
            if proc.wait(timeout=timeout_s) != 0:
                tail = "\n".join(logs[i].read_text().strip().splitlines()[-15:])
                raise RuntimeError(f"writer {i} failed (exit {proc.returncode}):\n{tail}")
    finally:
        for proc in procs:
            stop_process_group(proc, grace=5)
    writers = [json.loads((gate / f"result-{i}.json").read_text()) for i in range(n)]
    versions = [w["version"] for w in writers]
    models = [load_model_file(Path(f)) for f in model_files]
    first, twin = writers[0], writers[-1]
    # Nothing overwritten: each version serves exactly its own writer's model.
    own_model = [
        bool(
            (
                predict(f"models:/{name}/{w['version']}", x)
                == models[w["writer"]].predict_proba(x)[:, 1]
            ).all()
        )
        for w in writers
    ]
    count_after = len(client.search_model_versions(f"name='{name}'"))
    # The same bytes once more (a teammate re-running the registration): found, not re-added.
    again, again_created = register_with(client, name, models[0], experiment=EXPERIMENT)
    starts = [w["started"] for w in writers]
    return {
        "writers": writers,
        "versions": versions,
        "processes": n,
        "distinct_models": distinct_files,
        # One version per distinct model; the twin got the first writer's, and did not add one.
        "distinct": len(set(versions[:distinct_files])) == distinct_files,
        "twin_same_version": twin["version"] == first["version"],
        # Whichever of the pair took the lock first created the version; the other found it.
        "pair_created": int(first["created"]) + int(twin["created"]),
        "created": sum(w["created"] for w in writers),
        "count_before": count_before,
        "count_after": count_after,
        "own_model": own_model,
        "same_bytes_same_version": again == writers[0]["version"] and not again_created,
        "count_after_again": len(client.search_model_versions(f"name='{name}'")),
        # Every registration window [started, ended] overlaps every other: all had started
        # before the first one finished (measured in the writers, from the shared clock).
        "overlapped": max(starts) < min(w["ended"] for w in writers),
        "overlap_ms": 1000 * (min(w["ended"] for w in writers) - max(starts)),
        "start_spread_ms": 1000 * (max(starts) - min(starts)),
        "retries": sum(w["retries"] for w in writers),
        "champion_unchanged": alias_version(client, name, CHAMPION) == champion_before,
    }


def writer_env(base_env: Mapping[str, str]) -> dict[str, str]:
    """The lab's own environment and MLflow store, plus the scratch's bytecode cache (from
    ``base_env``, the scratch's environment) if it has one."""
    import os

    from labs.common.tracking import tracking_uri

    env = {**os.environ, "MLFLOW_TRACKING_URI": tracking_uri()}
    if "PYTHONPYCACHEPREFIX" in base_env:
        env.pop("PYTHONDONTWRITEBYTECODE", None)
        env["PYTHONPYCACHEPREFIX"] = base_env["PYTHONPYCACHEPREFIX"]
    return env


def writer_setting(writer: int) -> float:
    """Writer ``i`` retrains with ``train.C`` = 10^-(i+1): 0.1, 0.01, … (the lab's own C is 1)."""
    return 10.0 ** -(writer + 1)


def writer_models(train_csv: Path, out_dir: Path, writers: int, seed: int) -> list[Path]:
    """Each teammate's model: retrained on ``train_csv`` with a setting of their own
    (:func:`writer_setting`), so every writer holds bytes the registry has not seen."""
    import pandas as pd

    from labs.common.model import TrainParams, train_model
    from labs.common.tracking import dump_model

    frame = pd.read_csv(train_csv)
    files = []
    for i in range(writers):
        model = train_model(frame, TrainParams(C=writer_setting(i), seed=seed))
        files.append(out_dir / f"writer-{i}.skops")
        dump_model(model, files[-1])
    return files
