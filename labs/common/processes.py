"""Background servers on this machine: a free loopback port, waiting for health, stopping a
process group.

Every server a lab, flow, test or benchmark starts runs in its own process group
(``start_new_session=True``), so stopping it stops its workers too. :func:`serve_process` does
all three in one ``with`` block:

    with serve_process(lambda port: [python, "-m", "app", "--port", str(port)], log=path) as s:
        httpx.get(f"{s.url}/predict")          # healthy here; stopped (whole group) after
"""

from __future__ import annotations

import contextlib
import http.client
import os
import random
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

HOST = "127.0.0.1"


EPHEMERAL_RANGE_FILE = Path("/proc/sys/net/ipv4/ip_local_port_range")
LOWEST_PORT = 10000  # below: ports other software expects to be its own


def ephemeral_ports() -> tuple[int, int]:
    """The port range the kernel hands to outgoing connections (Linux: 32768–60999)."""
    try:
        low, high = (int(v) for v in EPHEMERAL_RANGE_FILE.read_text().split()[:2])
    except (OSError, ValueError):
        return (32768, 60999)
    return (low, high)


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing uses right now, below the ephemeral range.

    Asking the kernel for port 0 would give one *inside* the ephemeral range, which client
    connections draw from too: a load generator's thousands of sockets can take the port
    between this check and the server's bind ("address already in use"). Below the range only
    servers bind, so the port stays free unless another server picks the same one at random.
    """
    low, _ = ephemeral_ports()
    if low - LOWEST_PORT < 1000:  # an unusual range: fall back to the kernel's choice
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
            sock.bind((HOST, 0))
            return int(sock.getsockname()[1])
    pick = random.SystemRandom()
    for _ in range(200):
        port = pick.randrange(LOWEST_PORT, low)
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
            try:
                sock.bind((HOST, port))
            except OSError:
                continue
            return port
    raise OSError(f"no free port in {LOWEST_PORT}–{low - 1} on {HOST} after 200 tries")


def stop_process_group(process: subprocess.Popen | int, grace: float = 15.0) -> None:
    """SIGTERM the process group led by ``process`` (a child, or the pid of one started by an
    earlier command), SIGKILL it if it outlives ``grace`` seconds.

    A child is waited for, so its return code stays readable; for a bare pid the group is
    polled until it is gone (a worker whose server died may ignore the first signal).
    """
    pgid = process if isinstance(process, int) else process.pid
    if not isinstance(process, int) and process.poll() is not None:
        return
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pgid, signal.SIGTERM)
    if not isinstance(process, int):
        try:
            process.wait(grace)
            return
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(pgid, signal.SIGKILL)
            process.wait(grace)
            return
    deadline = time.monotonic() + grace
    try:
        while time.monotonic() < deadline:
            os.killpg(pgid, 0)  # raises ProcessLookupError once the group is gone
            with contextlib.suppress(ChildProcessError):
                os.waitpid(-pgid, os.WNOHANG)  # reap it if it is our child
            time.sleep(0.2)
        os.killpg(pgid, signal.SIGKILL)
    except ProcessLookupError:
        pass


def parent_death_signal(sig: int = signal.SIGTERM) -> Callable[[], None] | None:
    """A ``preexec_fn`` after which Linux sends the child ``sig`` when its parent dies — also
    by SIGKILL, when no ``finally`` or signal handler of the parent can run. None elsewhere.

    The kernel ties it to the parent *thread* that started the child: start the child from a
    thread that lives as long as it should (the main thread), or it dies with that thread.
    """
    if not sys.platform.startswith("linux"):
        return None
    import ctypes

    prctl = ctypes.CDLL(None, use_errno=True).prctl  # resolved here, not in the forked child
    parent = os.getpid()
    pr_set_pdeathsig = 1

    def set_signal() -> None:
        prctl(pr_set_pdeathsig, int(sig))
        if os.getppid() != parent:  # the parent died before prctl: nothing will signal us
            os._exit(1)

    return set_signal


class ProcessStartError(RuntimeError):
    """A background process exited, or was not healthy in time; the message carries the last
    lines of its log."""


def log_tail(path: Path | None, lines: int = 15) -> str:
    """The last ``lines`` of a process's log (or a note that there is none)."""
    if path is None:
        return "(no log)"
    try:
        text = Path(path).read_text(errors="replace")
    except OSError:
        return f"(no log at {path})"
    return "\n".join(text.strip().splitlines()[-lines:])


def wait_for_health(
    url: str,
    timeout: float = 60.0,
    *,
    process: subprocess.Popen | None = None,
    log: Path | None = None,
    interval: float = 0.1,
) -> float:
    """Poll ``url`` until it answers 200; return the seconds it took.

    Raise :class:`ProcessStartError` if ``process`` exits first or ``timeout`` seconds pass;
    the message names the URL and ends with the tail of ``log``.
    """
    start = time.monotonic()
    while time.monotonic() - start < timeout:
        if process is not None and process.poll() is not None:
            raise ProcessStartError(
                f"the process exited with code {process.returncode} before {url} was healthy:"
                f"\n{log_tail(log)}"
            )
        try:
            with urllib.request.urlopen(url, timeout=2.0) as response:
                if response.status == 200:
                    return time.monotonic() - start
        except (OSError, http.client.HTTPException):
            pass  # not listening yet, or not healthy yet (urllib raises on 4xx/5xx)
        time.sleep(interval)
    raise ProcessStartError(f"{url} was not healthy after {timeout:.0f} s:\n{log_tail(log)}")


@dataclass
class ServedProcess:
    """A server started by :func:`serve_process`: its process, port, base URL and log."""

    process: subprocess.Popen
    port: int
    log: Path

    @property
    def url(self) -> str:
        return f"http://{HOST}:{self.port}"

    def wait_healthy(self, path: str = "/health", timeout: float = 60.0) -> float:
        """:func:`wait_for_health` on ``url + path``, failing fast if the process exits."""
        return wait_for_health(f"{self.url}{path}", timeout, process=self.process, log=self.log)

    def log_tail(self, lines: int = 15) -> str:
        return log_tail(self.log, lines)

    def stop(self, grace: float = 15.0) -> int | None:
        """Stop the whole process group (see :func:`stop_process_group`); its exit code."""
        stop_process_group(self.process, grace)
        return self.process.returncode


@contextlib.contextmanager
def serve_process(
    command: Sequence[str] | Callable[[int], Sequence[str]],
    *,
    log: Path,
    port: int | None = None,
    health_path: str | None = "/health",
    timeout: float = 60.0,
    env: Mapping[str, str] | None = None,
    cwd: Path | None = None,
    stdin_pipe: bool = False,
    grace: float = 15.0,
    die_with_parent: bool = False,
) -> Iterator[ServedProcess]:
    """Start a server in its own process group on 127.0.0.1, wait until ``health_path``
    answers 200 (skip with ``health_path=None``), yield it, and stop its whole group on exit —
    also when the start fails, an assertion fails or Ctrl-C arrives.

    ``command`` is a list, or a function of the port (a free one unless ``port`` is given)
    returning the list. Output goes to ``log``; ``stdin_pipe`` keeps stdin open for the caller.
    ``die_with_parent`` adds :func:`parent_death_signal`: the server gets SIGTERM even if this
    process is SIGKILLed (its own group is out of reach of a signal to ours).
    """
    port = port or free_port()
    argv = [str(a) for a in (command(port) if callable(command) else command)]
    log = Path(log)
    log.parent.mkdir(parents=True, exist_ok=True)
    with log.open("wb") as out:
        process = subprocess.Popen(
            argv,
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.PIPE if stdin_pipe else subprocess.DEVNULL,
            env=None if env is None else dict(env),
            cwd=cwd,
            start_new_session=True,  # its own process group: stop() signals all of it
            preexec_fn=parent_death_signal() if die_with_parent else None,
        )
    served = ServedProcess(process, port, log)
    try:
        if health_path is not None:
            served.wait_healthy(health_path, timeout)
        yield served
    finally:
        if process.stdin is not None and not process.stdin.closed:
            with contextlib.suppress(OSError):
                process.stdin.close()
        served.stop(grace)
