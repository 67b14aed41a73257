"""Background servers on this machine: a free loopback port, and stopping a process group.

Every server a lab, flow or benchmark starts runs in its own process group
(``start_new_session=True``), so stopping it stops its workers too.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import time

HOST = "127.0.0.1"


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((HOST, 0))
        return int(sock.getsockname()[1])


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
