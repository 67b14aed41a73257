"""A local Prefect server and the served ``retrain`` deployment, started and stopped cleanly.

    python -m pipelines.local up        # make prefect-up
    python -m pipelines.local down      # make prefect-down
    python -m pipelines.local status

Both processes run in their own process group, bound to 127.0.0.1, with pid files and logs
in the project-local, gitignored ``PREFECT_HOME`` (``.prefect/``). ``up`` returns once the
server is healthy and the deployment ``retrain/retrain`` is registered; ``down`` stops the
worker first (a worker whose server is gone keeps retrying), then the server.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

from labs.common.paths import project_root
from labs.common.processes import serve_process, stop_process_group
from labs.common.tracking import OFFLINE_ENV

DEPLOYMENT = "retrain/retrain"


@dataclass(frozen=True)
class LocalPrefect:
    """Where a local server lives: its home (SQLite, logs, pid files) and port."""

    home: Path
    port: int = 4200

    @property
    def api_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/api"

    @property
    def ui_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def env(self, extra: Mapping[str, str] | None = None) -> dict[str, str]:
        """The environment of the server, the worker and any client of this server."""
        return {
            **os.environ,
            **OFFLINE_ENV,
            "PREFECT_HOME": str(self.home),
            "PREFECT_API_URL": self.api_url,
            # runs start within ~2 s of being requested, not the default 10 s
            "PREFECT_RUNNER_POLL_FREQUENCY": "2",
            **(extra or {}),
        }


def prefect_server_command(port: int, *options: str) -> list[str]:
    """``prefect server start`` on 127.0.0.1:``port``, analytics off (every server we start:
    ``make prefect-up``, a run's temporary one, the team stack's)."""
    prefect = str(Path(sys.executable).with_name("prefect"))
    return [prefect, "server", "start", "--host", "127.0.0.1", "--port", str(port),
            "--analytics-off", *options]  # fmt: skip


def start(
    local: LocalPrefect, extra_env: Mapping[str, str] | None = None, timeout: float = 120
) -> None:
    """Start the server and the served deployment unless they run; wait until both are ready."""
    local.home.mkdir(parents=True, exist_ok=True)
    env = local.env(extra_env)
    server_env = {k: v for k, v in env.items() if k != "PREFECT_API_URL"}
    if not _alive(local.home / "server.pid"):
        user = port_user(local.port)
        if user is not None:  # a server we did not start: fail now, not after the timeout
            raise PortInUseError(
                f"port {local.port} on 127.0.0.1 is in use by {user}; stop it or choose "
                f"another port (PREFECT_PORT=4300 make prefect-up)"
            )
        _spawn(prefect_server_command(local.port), local.home / "server", server_env)
    wait_until(
        lambda: _get(f"{local.api_url}/health") is not None,
        timeout,
        "Prefect server",
        local.home / "server.log",
        alive=lambda: _alive(local.home / "server.pid"),
    )
    if not _alive(local.home / "serve.pid"):
        _spawn([sys.executable, "-m", "pipelines.serve"], local.home / "serve", env)
    wait_until(
        lambda: deployment_id(local) is not None,
        timeout,
        f"deployment {DEPLOYMENT}",
        local.home / "serve.log",
        alive=lambda: _alive(local.home / "serve.pid"),
    )


def stop(local: LocalPrefect) -> list[str]:
    """Stop the worker, then the server (each by its process group); return what was stopped."""
    stopped = []
    for name in ("serve", "server"):
        if _stop_group(local.home / f"{name}.pid"):
            stopped.append(name)
    return stopped


@contextlib.contextmanager
def running(
    local: LocalPrefect, extra_env: Mapping[str, str] | None = None
) -> Iterator[LocalPrefect]:
    """Server and deployment for the duration of a ``with`` block, stopped even on errors."""
    try:
        start(local, extra_env)
        yield local
    finally:
        stop(local)


@contextlib.contextmanager
def temporary_server(timeout: float = 90) -> Iterator[str]:
    """The Prefect API for flows run in this process, for the duration of the block: the one
    configured (``PREFECT_API_URL``), else a temporary server of our own; yields its API URL.

    Why not Prefect's own temporary server, which the first flow call starts when no API is
    configured: Prefect starts it as a plain child and stops it only from ``atexit``, and a
    signal's default action ends Python without running ``atexit`` — every killed run left its
    server running (23 after a series of kills, issue #11). Ours runs in its own process group
    on 127.0.0.1 and is stopped with its whole group in ``finally`` (a SIGTERM of the run
    arrives as an interrupt under :func:`labs.common.entry.interrupt_on_signals`); if the run
    dies without unwinding (SIGKILL), the kernel sends the server SIGTERM
    (:func:`labs.common.processes.parent_death_signal`). Call it from the main thread.
    """
    from prefect.settings import PREFECT_API_URL, get_current_settings, temporary_settings

    configured = get_current_settings().api.url
    if configured:
        yield configured
        return
    home = Path(os.environ.get("PREFECT_HOME") or project_root() / ".prefect")
    log = home / f"temporary-server-{os.getpid()}.log"
    env = {k: v for k, v in {**os.environ, **OFFLINE_ENV}.items() if k != "PREFECT_API_URL"}
    with serve_process(
        lambda port: prefect_server_command(port, "--no-ui"),
        log=log,
        health_path="/api/health",
        timeout=timeout,
        env=env,
        grace=5,
        die_with_parent=True,
    ) as server:
        api_url = f"{server.url}/api"
        try:
            with temporary_settings(updates={PREFECT_API_URL: api_url}):
                yield api_url
        finally:
            # Ship the run's logs while the server is up: a log worker left with logs for a
            # stopped server retries at exit for a minute or more.
            from prefect.logging.handlers import APILogWorker

            APILogWorker.drain_all(timeout=5)
    log.unlink(missing_ok=True)  # kept only when the block failed: the server's side of it


def deployment_id(local: LocalPrefect) -> str | None:
    """The id of ``retrain/retrain`` on the server, or None if not (yet) registered."""
    found = _get(f"{local.api_url}/deployments/name/{DEPLOYMENT}")
    return found.get("id") if isinstance(found, dict) else None


class PortInUseError(RuntimeError):
    """The port is taken by a process prefect-up did not start."""


def port_user(port: int) -> str | None:
    """None if nothing listens on 127.0.0.1:``port``, else what does (``ss`` where present)."""
    import socket

    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(("127.0.0.1", port))
            return None
        except OSError:
            pass
    try:
        out = subprocess.run(
            ["ss", "-Hltnp", f"sport = :{port}"], capture_output=True, text=True, timeout=5
        ).stdout
    except (OSError, subprocess.SubprocessError):
        out = ""
    users = " ".join(out.split()[5:]) if out.strip() else ""
    return users or "another process"


def wait_until(
    check: Callable[[], bool],
    timeout: float,
    what: str,
    log: Path | None = None,
    alive: Callable[[], bool] | None = None,
) -> None:
    """Poll ``check`` every 0.5 s; fail with the end of the process log on timeout, or at once
    when ``alive`` says the process died."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        if alive is not None and not alive():
            raise TimeoutError(f"{what} exited before it was ready; {_tail(log)}")
        time.sleep(0.5)
    raise TimeoutError(f"{what} not ready after {timeout:.0f} s; {_tail(log)}")


def _tail(log: Path | None) -> str:
    text = log.read_text(errors="replace")[-2000:] if log and log.exists() else "(no log)"
    return f"end of {log}:\n{text}"


def _spawn(cmd: list[str], stem: Path, env: Mapping[str, str]) -> int:
    log = open(stem.with_suffix(".log"), "ab")  # the child process writes to it
    proc = subprocess.Popen(
        cmd,
        cwd=project_root(),
        env=dict(env),
        stdout=log,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
        start_new_session=True,
    )
    stem.with_suffix(".pid").write_text(str(proc.pid))
    return proc.pid


def _alive(pid_file: Path) -> bool:
    try:
        pid = int(pid_file.read_text())
        with contextlib.suppress(ChildProcessError):  # reap it if it is our dead child
            if os.waitpid(pid, os.WNOHANG)[0] == pid:
                return False
        os.kill(pid, 0)
    except (FileNotFoundError, ValueError, ProcessLookupError):
        return False
    except PermissionError:
        return True
    return True


def _stop_group(pid_file: Path) -> bool:
    try:
        pgid = int(pid_file.read_text())
    except (FileNotFoundError, ValueError):
        return False
    stop_process_group(pgid)
    pid_file.unlink(missing_ok=True)
    return True


def _get(url: str) -> object | None:
    try:
        with urllib.request.urlopen(url, timeout=2) as response:  # loopback only
            return json.loads(response.read() or b"null")
    except (urllib.error.URLError, ConnectionError, TimeoutError, json.JSONDecodeError):
        return None


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m pipelines.local", description=__doc__)
    parser.add_argument("command", choices=["up", "down", "status"])
    parser.add_argument("--port", type=int, default=int(os.environ.get("PREFECT_PORT", 4200)))
    args = parser.parse_args(argv)
    local = LocalPrefect(home=project_root() / ".prefect", port=args.port)
    if args.command == "up":
        started = time.perf_counter()
        try:
            start(local)
        except (TimeoutError, PortInUseError) as err:
            print(f"prefect-up: {err}", file=sys.stderr)
            stop(local)
            return 1
        took = time.perf_counter() - started
        print(f"Prefect server and deployment {DEPLOYMENT} ready in {took:.1f} s")
        print(f"  UI:   {local.ui_url}")
        print(f"  run:  source .venv/bin/activate && prefect deployment run {DEPLOYMENT}")
        print("        (--param month=3 for the month concept drift hits, --param force=true)")
        print(f"  logs: {local.home}/server.log, {local.home}/serve.log; stop: make prefect-down")
    elif args.command == "down":
        stopped = stop(local)
        print("stopped: " + (", ".join(stopped) if stopped else "nothing was running"))
    else:
        server, serve = _alive(local.home / "server.pid"), _alive(local.home / "serve.pid")
        print(
            f"server: {'up' if server else 'down'}, deployment worker: {'up' if serve else 'down'}"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
