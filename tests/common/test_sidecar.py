"""The sidecar never outlives the lab: killed at once on Ctrl-C, awaited on success."""

from __future__ import annotations

import os
import time

import pytest

from labs.common.sidecar import sidecar


def _sleep(seconds: float) -> int:
    time.sleep(seconds)
    return os.getpid()


def test_an_interrupted_lab_kills_its_sidecar_at_once() -> None:
    started = time.monotonic()
    with pytest.raises(KeyboardInterrupt):
        with sidecar() as side:
            pid = side.submit(os.getpid).result()
            side.submit(_sleep, 60)
            raise KeyboardInterrupt
    assert time.monotonic() - started < 20  # not the 60 s the task would take
    time.sleep(0.5)
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)


def test_a_finished_lab_waits_for_its_sidecar() -> None:
    with sidecar() as side:
        future = side.submit(_sleep, 0.2)
    assert future.done() and future.result() != os.getpid()
