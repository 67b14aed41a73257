"""labs.common.processes: a server started to die with its parent does, even by SIGKILL."""

from __future__ import annotations

import contextlib
import subprocess
import sys
import textwrap
import time

import psutil
import pytest

from labs.common.processes import stop_process_group

# The parent: starts a sleeper in a session of its own (as serve_process does, so a signal to
# the parent's group misses it), prints its pid and waits to be killed.
PARENT = textwrap.dedent(
    """
    import subprocess, sys, time
    from labs.common.processes import parent_death_signal

    preexec = parent_death_signal() if sys.argv[1] == "yes" else None
    sleeper = subprocess.Popen(
        [sys.executable, "-c", "import time; time.sleep(60)"],
        start_new_session=True,
        preexec_fn=preexec,
    )
    print(sleeper.pid, flush=True)
    time.sleep(60)
    """
)


def _gone_within(pid: int, seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            if psutil.Process(pid).status() == psutil.STATUS_ZOMBIE:
                return True
        except psutil.NoSuchProcess:
            return True
        time.sleep(0.1)
    return False


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="prctl is Linux's")
@pytest.mark.parametrize("die_with_parent", [True, False])
def test_a_sigkill_of_the_parent_stops_a_child_started_to_die_with_it(
    die_with_parent: bool,
) -> None:
    parent = subprocess.Popen(
        [sys.executable, "-c", PARENT, "yes" if die_with_parent else "no"],
        stdout=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    child = None
    try:
        assert parent.stdout is not None
        child = int(parent.stdout.readline())
        assert not _gone_within(child, 0.5)
        parent.kill()  # SIGKILL: no handler, no finally, no atexit of the parent runs
        parent.wait(10)
        gone = _gone_within(child, 5)
    finally:
        stop_process_group(parent, grace=5)
        if child is not None:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                stop_process_group(child, grace=2)  # it leads a session (and group) of its own
    assert gone == die_with_parent  # without the signal the sleeper is orphaned, still running


def test_a_free_port_is_never_one_a_client_connection_can_take() -> None:
    """Client sockets draw their local port from the ephemeral range; a port handed to a server
    from that range can be taken by a load generator's connection before the server binds it
    (the scaling audit crashed on 'address already in use' that way)."""
    import socket

    from labs.common import processes

    low, high = processes.ephemeral_ports()
    with socket.create_server((processes.HOST, 0)) as listener:
        clients = [
            socket.create_connection(listener.getsockname()) for _ in range(20)
        ]  # 20 client ports, all drawn from the ephemeral range
        taken = {c.getsockname()[1] for c in clients}
        try:
            assert all(low <= p <= high for p in taken)
            ports = [processes.free_port() for _ in range(50)]
        finally:
            for c in clients:
                c.close()
    assert not any(low <= p <= high for p in ports)
    assert all(processes.LOWEST_PORT <= p < low for p in ports)


def test_a_free_port_skips_one_a_server_already_holds(monkeypatch: pytest.MonkeyPatch) -> None:
    import socket

    from labs.common import processes

    with socket.create_server((processes.HOST, 0)) as busy:
        held = busy.getsockname()[1]
        with socket.create_server((processes.HOST, 0)) as probe:
            spare = probe.getsockname()[1]
        picks = iter([held, spare])
        monkeypatch.setattr(processes, "ephemeral_ports", lambda: (65000, 65535))
        monkeypatch.setattr(
            processes.random,
            "SystemRandom",
            lambda: type("R", (), {"randrange": lambda *a: next(picks)})(),
        )
        assert processes.free_port() == spare
