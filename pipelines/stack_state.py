"""The team stack's bookkeeping: its state file (pids, ports, URLs) and its process groups.

Every part of the stack (:mod:`pipelines.stack`) runs in a process group of its own; the state
file records each group's leader with its start time, so a later ``down`` or ``status`` in
another process finds them — and never signals an unrelated process that reused a pid.
"""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import urllib.error
import urllib.request
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from labs.common.paths import project_root
from labs.common.tracking import OFFLINE_ENV

STATE_FILE = "stack.json"
# Stop order, tier by tier (the parts of a tier in parallel): the workers, then the servers
# they talk to, then the database under the servers.
STOP_TIERS = (
    ("worker-1", "worker-2", "dask-worker-1", "dask-worker-2"),
    ("prefect", "mlflow", "dask-scheduler"),
    ("postgres",),
)
STOP_ORDER = tuple(name for tier in STOP_TIERS for name in tier)


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


def write_state(root: Path, state: Mapping[str, Any]) -> None:
    path = root / STATE_FILE
    path.write_text(json.dumps(state, indent=2))
    path.chmod(0o600)  # it holds the database URLs, password included


def parts(state: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    return {name: state[name] for name in STOP_ORDER if isinstance(state.get(name), dict)}


def _started_at(pid: int) -> int | None:
    """The process's start time in clock ticks since boot (``/proc/<pid>/stat`` field 22)."""
    try:
        return int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[19])
    except (OSError, IndexError, ValueError):
        return None


def group_alive(part: Mapping[str, Any]) -> bool:
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


def spawn(
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
            group=group_of(user),
            extra_groups=[] if user else None,
        )


def part_of(proc: subprocess.Popen, **fields: Any) -> dict[str, Any]:
    """A started part as the state file records it: pid (= process group) and start time."""
    return {"pid": proc.pid, "started_at": _started_at(proc.pid), **fields}


def ids(user: str) -> tuple[int, int]:
    import pwd

    entry = pwd.getpwnam(user)
    return entry.pw_uid, entry.pw_gid


def group_of(user: str | None) -> int | None:
    return ids(user)[1] if user else None


def answers(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2) as response:  # loopback only
            return response.status == 200
    except (urllib.error.URLError, ConnectionError, TimeoutError):
        return False


def post_json(url: str, body: Mapping[str, Any]) -> object | None:
    request = urllib.request.Request(
        url, data=json.dumps(body).encode(), headers={"Content-Type": "application/json"}
    )
    try:
        with urllib.request.urlopen(request, timeout=5) as response:  # loopback only
            return json.loads(response.read() or b"null")
    except (urllib.error.URLError, ConnectionError, TimeoutError, json.JSONDecodeError):
        return None


def base_env() -> dict[str, str]:
    """This process's environment with the telemetry of MLflow, Prefect and DVC off."""
    return {**os.environ, **OFFLINE_ENV}


def client_env(state: Mapping[str, Any]) -> dict[str, str]:
    """What moves a lab, a flow or the CLI onto the stack: three addresses, nothing else."""
    return {
        "MLFLOW_TRACKING_URI": state["mlflow"]["url"],
        "PREFECT_API_URL": state["prefect"]["api_url"],
        "DASK_SCHEDULER_ADDRESS": state["dask-scheduler"]["address"],
    }
