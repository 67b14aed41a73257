"""The team stack's compute side: a Dask scheduler with two workers (flows fan heavy tasks out
to it when ``DASK_SCHEDULER_ADDRESS`` names it) and the Prefect process work pool with two
workers, on which the ``retrain`` and ``monitor`` deployments are applied. Started by
:func:`pipelines.stack.start` after the servers they talk to.
"""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from labs.common.processes import ProcessStartError, free_port, log_tail
from pipelines.stack_state import base_env, client_env, part_of, post_json, spawn

POOL = "labs-pool"
WORKERS = 2


def online_workers(state: Mapping[str, Any]) -> list[str]:
    """Names of the pool's workers the Prefect server sees as ONLINE."""
    found = post_json(
        f"{state['prefect']['api_url']}/work_pools/{state['pool']}/workers/filter", {"limit": 50}
    )
    if not isinstance(found, list):
        return []
    return sorted(w["name"] for w in found if w.get("status") == "ONLINE")


def start_dask(
    root: Path,
    state: dict[str, Any],
    procs: dict[str, subprocess.Popen],
    extra_env: Mapping[str, str],
    timeout: float,
) -> None:
    """A Dask scheduler and two single-threaded workers; ready when it counts both."""
    dask = str(Path(sys.executable).parent / "dask")
    port = free_port()
    address = f"tcp://127.0.0.1:{port}"
    # tasks that run here read the registry (batch scoring loads the champion): the workers
    # get the stack's MLflow URL like the pool's workers do
    env = {**base_env(), "MLFLOW_TRACKING_URI": state["mlflow"]["url"], **extra_env}
    log = root / "logs" / "dask-scheduler.log"
    procs["dask-scheduler"] = spawn(
        [dask, "scheduler", "--host", "127.0.0.1", "--port", str(port), "--no-dashboard"],
        log,
        env,
    )
    state["dask-scheduler"] = part_of(
        procs["dask-scheduler"], port=port, address=address, log=str(log)
    )
    for i in range(1, WORKERS + 1):
        name = f"dask-worker-{i}"
        log = root / "logs" / f"{name}.log"
        procs[name] = spawn(
            [dask, "worker", address, "--name", name, "--nthreads", "1", "--no-dashboard"]
            + ["--host", "127.0.0.1", "--local-directory", str(root / "dask")],
            log,
            env,
        )
        state[name] = part_of(procs[name], name=name, log=str(log))
    from distributed import Client

    deadline = time.monotonic() + timeout
    client = None
    try:
        while True:
            for name in ("dask-scheduler", *(f"dask-worker-{i}" for i in range(1, WORKERS + 1))):
                if procs[name].poll() is not None:
                    raise ProcessStartError(
                        f"{name} exited with code {procs[name].returncode}:\n"
                        f"{log_tail(Path(state[name]['log']))}"
                    )
            if time.monotonic() > deadline:
                raise ProcessStartError(f"the Dask workers were not up after {timeout:.0f} s")
            try:
                client = client or Client(address, timeout=2)
                if len(client.scheduler_info()["workers"]) >= WORKERS:
                    return
            except OSError:  # the scheduler is not listening yet
                pass
            time.sleep(0.25)
    finally:
        if client is not None:
            client.close()


def start_workers(
    root: Path,
    state: dict[str, Any],
    procs: dict[str, subprocess.Popen],
    extra_env: Mapping[str, str],
    timeout: float,
) -> None:
    """The process work pool and two workers; ready when the server lists both ONLINE."""
    env = {**prefect_client_env(root, state), **extra_env}
    made = subprocess.run(
        [str(Path(sys.executable).parent / "prefect"), "work-pool", "create", POOL]
        + ["--type", "process", "--overwrite"],
        capture_output=True,
        text=True,
        env=env,
        timeout=timeout,
    )
    if made.returncode != 0:
        raise ProcessStartError(f"work pool {POOL} not created:\n{made.stdout}{made.stderr}")
    for i in range(1, WORKERS + 1):
        name = f"worker-{i}"
        log = root / "logs" / f"{name}.log"
        procs[name] = spawn(
            [str(Path(sys.executable).parent / "prefect"), "worker", "start"]
            + ["--pool", POOL, "--type", "process", "--name", name],
            log,
            env,
        )
        state[name] = part_of(procs[name], name=name, log=str(log))
    deadline = time.monotonic() + timeout
    while len(online_workers(state)) < WORKERS:
        for i in range(1, WORKERS + 1):
            proc = procs[f"worker-{i}"]
            if proc.poll() is not None:
                raise ProcessStartError(
                    f"worker-{i} exited with code {proc.returncode}:\n"
                    f"{log_tail(Path(state[f'worker-{i}']['log']))}"
                )
        if time.monotonic() > deadline:
            raise ProcessStartError(f"the workers were not online after {timeout:.0f} s")
        time.sleep(0.5)


def apply_deployments(root: Path, state: dict[str, Any]) -> None:
    """Register the flows' deployments on the pool (pipelines.serve, pointed at the pool)."""
    done = subprocess.run(
        [sys.executable, "-m", "pipelines.serve", "--pool", POOL],
        capture_output=True,
        text=True,
        env=prefect_client_env(root, state),
        timeout=300,
    )
    if done.returncode != 0:
        raise ProcessStartError(f"deployments not registered:\n{done.stdout}{done.stderr}")
    state["deployments"] = done.stdout.split()


def prefect_client_env(root: Path, state: Mapping[str, Any]) -> dict[str, str]:
    """A worker's (and the deployment CLI's) environment: telemetry off, the stack's URLs,
    and runs polled every 2 s instead of 10 s."""
    return {
        **base_env(),
        **client_env(state),
        "PREFECT_HOME": str(root / "prefect"),
        "PREFECT_WORKER_QUERY_SECONDS": "2",
        "PREFECT_WORKER_PREFETCH_SECONDS": "2",
    }
