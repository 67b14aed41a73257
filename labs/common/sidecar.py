"""A sidecar process for a lab: slow imports (MLflow, Evidently) and logging run beside the
lab's own work, and it never outlives the lab.

    with sidecar() as side:
        warm = side.submit(warm_up_tracking)      # imports MLflow while the lab computes
        ...
        run_id = side.submit(log_run_record, experiment, record).result()

On an exception or Ctrl-C the worker is killed at once (a plain ``ProcessPoolExecutor`` would
wait for it to finish its task), and workers ignore SIGINT themselves, so a Ctrl-C in a
terminal prints one line from the lab instead of a traceback from every process.
"""

from __future__ import annotations

import contextlib
import multiprocessing
import signal
from collections.abc import Iterator
from concurrent.futures import ProcessPoolExecutor


def _ignore_sigint() -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)


@contextlib.contextmanager
def sidecar(max_workers: int = 1) -> Iterator[ProcessPoolExecutor]:
    """A spawn-context process pool that is killed, not awaited, when the lab stops early."""
    executor = ProcessPoolExecutor(
        max_workers=max_workers,
        mp_context=multiprocessing.get_context("spawn"),
        initializer=_ignore_sigint,
    )
    try:
        yield executor
    except BaseException:
        # Private but stable since 3.8: the only handle on the worker processes.
        for process in list((executor._processes or {}).values()):
            process.kill()
        manager = executor._executor_manager_thread
        executor.shutdown(wait=False, cancel_futures=True)
        # The pool's manager thread sees the killed worker and closes its wake-up pipe. Wait
        # for it here: at interpreter exit, concurrent.futures wakes every manager through that
        # pipe, and on 3.11 a close racing that wake-up writes to a closed descriptor ("Bad file
        # descriptor" traceback after a clean Ctrl-C).
        if manager is not None:
            manager.join(timeout=10)
        raise
    executor.shutdown(wait=True)
