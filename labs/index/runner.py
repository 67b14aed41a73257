"""``make labs``: run every ready lab, one after another, and show which runs and how long each
took.

Labs run sequentially: they share the MLflow store (SQLite), the model registry and two cores,
so running them side by side would make their numbers and timings interfere. Each lab runs in
its own process (``python -m labs.<topic>``) with its output in ``reports/<topic>/run.log``; a
failing lab is recorded and the next one starts. The end lists the failures and the total time.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import FIRST_COMPLETED, ThreadPoolExecutor, wait
from dataclasses import dataclass
from pathlib import Path

from labs.common.catalogue import Topic
from labs.common.paths import project_root
from labs.common.processes import stop_process_group

EXIT_MEANINGS = {0: "every claim holds", 1: "a claim fails", 2: "refused", 130: "interrupted"}
LOG_TAIL_LINES = 12
INTERRUPT_GRACE_S = 60.0


@dataclass(frozen=True)
class LabRun:
    """How one lab's run ended."""

    topic: str
    returncode: int
    duration_s: float
    log: Path

    @property
    def ok(self) -> bool:
        return self.returncode == 0

    @property
    def outcome(self) -> str:
        return EXIT_MEANINGS.get(self.returncode, f"crashed (exit {self.returncode})")


def lab_command(topic: Topic) -> list[str]:
    """How one lab is run: its module in this interpreter (the project venv)."""
    return [sys.executable, "-m", f"labs.{topic.id}"]


def run_labs(
    topics: Sequence[Topic],
    *,
    command: Callable[[Topic], list[str]] = lab_command,
    root: Path | None = None,
    console: object | None = None,
    log_name: Path = Path("{topic}") / "run.log",
    describe: Callable[[LabRun], str] = lambda run: run.outcome,
    lanes: int = 1,
) -> list[LabRun]:
    """Run each lab with a progress display; keep going past failures. The runs are returned in
    the order of ``topics``.

    Each run's output goes to ``reports/<log_name>`` (``{topic}`` is the lab); ``describe``
    words how a run ended on its progress line. With ``lanes`` > 1, up to that many labs run
    side by side (each in its own process group), except a lab that needs the whole machine
    (:attr:`Topic.whole_machine`): it runs with nothing beside it, after the others.

    Ctrl-C stops the running labs (each stops what it started) and the remaining ones are
    skipped; :class:`KeyboardInterrupt` propagates after their process groups are gone. A lab
    that exits 130 (interrupted from elsewhere) stops the run the same way.
    """
    from rich.console import Console
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        SpinnerColumn,
        TextColumn,
        TimeElapsedColumn,
    )

    root = root or project_root()
    out = console if isinstance(console, Console) else Console(highlight=False)
    done: dict[str, LabRun] = {}
    running: dict[str, subprocess.Popen] = {}
    lock = threading.Lock()
    stopping = threading.Event()  # set on Ctrl-C: no lab starts after it
    columns = (
        SpinnerColumn(),
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
    )
    with Progress(*columns, console=out, transient=True) as progress:
        overall = progress.add_task("labs", total=len(topics))

        def show() -> None:
            names = " + ".join(running) or "…"
            progress.update(overall, description=f"lab {names}")

        def one(topic: Topic) -> LabRun | None:
            log = root / "reports" / str(log_name).format(topic=topic.id)
            log.parent.mkdir(parents=True, exist_ok=True)
            started = time.perf_counter()
            with log.open("w") as sink, lock:
                if stopping.is_set():
                    return None
                process = subprocess.Popen(
                    command(topic),
                    cwd=root,
                    stdout=sink,
                    stderr=subprocess.STDOUT,
                    start_new_session=True,  # Ctrl-C reaches only us; we pass it on
                )
                running[topic.id] = process
                show()
            returncode = process.wait()
            lab = LabRun(topic.id, returncode, round(time.perf_counter() - started, 1), log)
            with lock:
                del running[topic.id]
                done[topic.id] = lab
                progress.advance(overall)
                show()
                mark = "[green]✓[/]" if lab.ok else "[red]✗[/]"
                out.print(f"{mark} {topic.id:<16} {lab.duration_s:6.1f} s  {describe(lab)}")
            return lab

        shared = [t for t in topics if lanes == 1 or not t.whole_machine]
        alone = [t for t in topics if t not in shared]
        for batch, width in ((shared, max(1, lanes)), (alone, 1)):
            _run_batch(batch, width, one, stop=lambda: _interrupt(running, lock, stopping))
    return [done[t.id] for t in topics]


def _run_batch(
    topics: Sequence[Topic],
    width: int,
    one: Callable[[Topic], LabRun | None],
    stop: Callable[[], None],
) -> None:
    """Run ``one`` for each topic, ``width`` at a time. On Ctrl-C (or a lab that exits 130),
    the labs not started are dropped, ``stop`` stops the running ones, and
    :class:`KeyboardInterrupt` propagates."""
    if width == 1:
        try:
            for topic in topics:
                lab = one(topic)
                if lab is None or lab.returncode == 130:
                    raise KeyboardInterrupt
        except BaseException:
            stop()
            raise
        return
    with ThreadPoolExecutor(max_workers=width) as pool:
        pending = {pool.submit(one, t) for t in topics}
        try:
            while pending:
                finished, pending = wait(pending, timeout=0.5, return_when=FIRST_COMPLETED)
                if any(getattr(f.result(), "returncode", 130) == 130 for f in finished):
                    raise KeyboardInterrupt
        except BaseException:
            for future in pending:
                future.cancel()  # the ones not started yet
            stop()  # the running ones, before the pool waits for their threads
            raise


def _interrupt(
    running: dict[str, subprocess.Popen], lock: threading.Lock, stopping: threading.Event
) -> None:
    """Let no lab start any more, pass Ctrl-C on to every running one, give them
    ``INTERRUPT_GRACE_S`` to stop what they started, then stop whatever is left of their
    process groups."""
    with lock:
        stopping.set()
        processes = list(running.values())
    for process in processes:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGINT)
    deadline = time.monotonic() + INTERRUPT_GRACE_S
    for process in processes:
        try:
            process.wait(max(0.0, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            pass
        stop_process_group(process)


def report(runs: Sequence[LabRun], total_s: float, console: object | None = None) -> int:
    """Print the failures (with the tail of their logs) and the total; the exit code."""
    from rich.console import Console

    out = console if isinstance(console, Console) else Console(highlight=False)
    failed = [r for r in runs if not r.ok]
    passed = len(runs) - len(failed)
    out.print()
    for run in failed:
        out.print(f"[red]✗ {run.topic}[/]: {run.outcome} — log: {_shown(run.log)}")
        for line in _tail(run.log):
            out.print(f"    {line}", markup=False)
    verdict = "[green]all passed[/]" if not failed else f"[red]{len(failed)} failed[/]"
    names = f" ({', '.join(r.topic for r in failed)})" if failed else ""
    out.print(f"{passed}/{len(runs)} labs passed, {verdict}{names} — total {total_s:.1f} s")
    return 1 if failed else 0


def _tail(log: Path) -> list[str]:
    try:
        lines = log.read_text(errors="replace").splitlines()
    except OSError:
        return []
    return lines[-LOG_TAIL_LINES:]


def _shown(path: Path) -> str:
    try:
        return str(path.relative_to(project_root()))
    except ValueError:
        return str(path)
