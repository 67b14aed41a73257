"""The prediction log's writer thread: the event loop never waits on SQLite.

Why a thread and a bounded queue: a SQLite write can block for as long as another process
holds the write lock (a backup, a `sqlite3` shell left in a transaction, a second worker). Run
on the event loop, that write froze every endpoint, ``/health`` included (4.8 s, then 30 s,
measured). Here one writer thread owns the log's connection and drains a bounded queue;
the app enqueues a write and waits for it only as long as it chooses (see ``app.py``).

- A locked database (``database is locked`` / ``busy``) is retried with backoff, never dropped:
  the write lands once the lock frees.
- A full queue refuses the write at once (:meth:`LogWriter.submit` returns ``None``): the
  caller counts the loss — nothing is dropped silently.
- :meth:`LogWriter.close` drains what is queued (bounded wait), then closes the log; writes it
  could not finish in time fail with :class:`LogClosedError` and are counted by the caller.
"""

from __future__ import annotations

import asyncio
import logging
import queue
import sqlite3
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future
from typing import Any, TypeVar

from labs.common.serving.predlog import DuplicateRequestError, PredictionLog

logger = logging.getLogger("labs.common.serving.writer")

T = TypeVar("T")

RETRY_FIRST_S = 0.005  # first backoff after "database is locked"; doubles up to RETRY_MAX_S
RETRY_MAX_S = 0.5


class LogClosedError(RuntimeError):
    """The writer stopped before this write could be done (shut down while the log was locked)."""


def is_locked(err: BaseException) -> bool:
    """A transient SQLite lock (another connection holds the write lock), worth retrying."""
    text = str(err).lower()
    return isinstance(err, sqlite3.OperationalError) and ("locked" in text or "busy" in text)


_Job = tuple[Callable[[PredictionLog], Any], Future]


class LogWriter:
    """One thread that performs every write to ``log``, in order, from a bounded queue."""

    def __init__(self, log: PredictionLog, maxsize: int = 1000) -> None:
        self.log = log
        self.maxsize = maxsize
        self._queue: queue.Queue[_Job | None] = queue.Queue(maxsize=maxsize)
        self._stopping = threading.Event()
        self._give_up_at = float("inf")  # set by close(): retries of a locked log end there
        self._lost = 0  # writes the thread failed at shutdown (the log stayed locked)
        self._thread = threading.Thread(target=self._run, name="prediction-log-writer", daemon=True)
        self._thread.start()

    def depth(self) -> int:
        """Writes waiting in the queue (the one being written is not counted)."""
        return self._queue.qsize()

    def submit(self, write: Callable[[PredictionLog], T]) -> Future[T] | None:
        """Queue ``write(log)``; its future, or ``None`` at once if the queue is full or the
        writer is closing (the caller must count that loss)."""
        if self._stopping.is_set():
            return None
        future: Future[T] = Future()
        try:
            self._queue.put_nowait((write, future))
        except queue.Full:
            return None
        return future

    def close(self, timeout: float = 5.0) -> int:
        """Write what is queued (waiting at most ``timeout`` s for a locked log), stop the
        thread, close the log; return how many queued writes failed unwritten."""
        self._stopping.set()
        self._give_up_at = time.monotonic() + timeout
        self._queue.put(None)  # blocks only while full; the thread is draining it
        self._thread.join(timeout + 2 * RETRY_MAX_S + 1)
        lost = 0
        while True:  # only if the thread is stuck past its deadline: fail what is left
            try:
                job = self._queue.get_nowait()
            except queue.Empty:
                break
            if job is not None:
                job[1].set_exception(LogClosedError("the prediction log closed first"))
                lost += 1
        lost += self._lost
        if not self._thread.is_alive():
            self.log.close()
        return lost

    def _run(self) -> None:
        while True:
            job = self._queue.get()
            if job is None:
                return
            write, future = job
            if not future.set_running_or_notify_cancel():
                continue
            try:
                future.set_result(self._write_retrying(write))
            except BaseException as err:  # handed to whoever waits on the future
                if isinstance(err, LogClosedError):
                    self._lost += 1
                future.set_exception(err)

    def _write_retrying(self, write: Callable[[PredictionLog], T]) -> T:
        delay = RETRY_FIRST_S
        while True:
            try:
                return write(self.log)
            except sqlite3.OperationalError as err:
                if not is_locked(err):
                    raise
                if time.monotonic() + delay > self._give_up_at:
                    raise LogClosedError(
                        "the prediction log stayed locked past the shutdown deadline"
                    ) from err
                logger.debug("prediction log locked; retrying in %.3f s", delay)
                time.sleep(delay)
                delay = min(2 * delay, RETRY_MAX_S)


async def wait_for_write(write: Future, timeout: float) -> bool:
    """Wait up to ``timeout`` s for the writer thread to finish ``write``; never cancels it."""
    if write.done():
        return True
    waiter = asyncio.wrap_future(write)
    done, _ = await asyncio.wait({waiter}, timeout=timeout)
    if not done:
        # Retrieve its outcome when it lands, so asyncio does not warn about it.
        waiter.add_done_callback(lambda f: f.cancelled() or f.exception())
    return bool(done)


def count_late_failure(dropped: Any, request_id: str) -> Callable[[Future], None]:
    """A callback for a write answered "pending": if it fails after all, count the loss in
    ``dropped`` (the app's ``churn_prediction_log_dropped_total``, by reason)."""

    def check(write: Future) -> None:
        err = write.exception()
        if err is None:
            return
        reason = (
            "duplicate"
            if isinstance(err, DuplicateRequestError)
            else "shutdown"
            if isinstance(err, LogClosedError)
            else "write_error"
        )
        dropped.labels(reason).inc()
        logger.error("request %s was answered but not logged: %s", request_id, err)

    return check
