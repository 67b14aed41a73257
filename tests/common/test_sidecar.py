"""The sidecar never outlives the lab: killed at once on Ctrl-C, awaited on success."""

from __future__ import annotations

import os
import time
from pathlib import Path

import psutil
import pytest

from labs.common.sidecar import sidecar


def _sleep(seconds: float) -> int:
    time.sleep(seconds)
    return os.getpid()


def _sleep_then_mark(seconds: float, mark: Path) -> None:
    time.sleep(seconds)
    mark.write_text("finished")


def test_an_interrupted_lab_kills_its_sidecar_at_once(tmp_path: Path) -> None:
    mark = tmp_path / "finished"
    with pytest.raises(KeyboardInterrupt):
        with sidecar() as side:
            pid = side.submit(os.getpid).result()
            side.submit(_sleep_then_mark, 60, mark)
            raise KeyboardInterrupt
    # Killed, not awaited: the process is gone (waited for as an event, not slept on) and its
    # 60 s task never finished — an awaited sidecar would have written the mark first.
    try:
        psutil.Process(pid).wait(timeout=20)
    except psutil.NoSuchProcess:
        pass
    assert not psutil.pid_exists(pid) or psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    assert not mark.exists()


def test_a_finished_lab_waits_for_its_sidecar() -> None:
    with sidecar() as side:
        future = side.submit(_sleep, 0.2)
    assert future.done() and future.result() != os.getpid()


def test_an_interrupted_sidecar_leaves_no_wakeup_for_interpreter_exit_to_race() -> None:
    """After a Ctrl-C the pool's manager thread has ended and closed its wake-up pipe, so the
    wake-up concurrent.futures sends every pool at interpreter exit is a no-op — on 3.11 it
    raced the close and printed a "Bad file descriptor" traceback after a clean exit 130."""
    with pytest.raises(KeyboardInterrupt):
        with sidecar() as side:
            side.submit(os.getpid).result()
            side.submit(_sleep, 60)
            manager = side._executor_manager_thread
            wakeup = side._executor_manager_thread_wakeup
            raise KeyboardInterrupt
    assert manager is not None and not manager.is_alive()
    assert wakeup._closed
