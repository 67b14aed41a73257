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
