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
import time
from collections.abc import Callable, Sequence
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
) -> list[LabRun]:
    """Run each lab in turn with a progress display; keep going past failures.

    Each run's output goes to ``reports/<log_name>`` (``{topic}`` is the lab); ``describe``
    words how a run ended on its progress line.

    Ctrl-C stops the running lab (it stops what it started) and the remaining ones are skipped;
    :class:`KeyboardInterrupt` propagates after the lab's process group is gone.
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
    runs: list[LabRun] = []
    columns = (
        SpinnerColumn(),
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
    )
    with Progress(*columns, console=out, transient=True) as progress:
        overall = progress.add_task("labs", total=len(topics))
        for topic in topics:
            progress.update(overall, description=f"lab {topic.id}")
            log = root / "reports" / str(log_name).format(topic=topic.id)
            log.parent.mkdir(parents=True, exist_ok=True)
            started = time.perf_counter()
            returncode = _run_one(command(topic), log, root)
            lab = LabRun(topic.id, returncode, round(time.perf_counter() - started, 1), log)
            runs.append(lab)
            progress.advance(overall)
            mark = "[green]✓[/]" if lab.ok else "[red]✗[/]"
            out.print(f"{mark} {topic.id:<16} {lab.duration_s:6.1f} s  {describe(lab)}")
            if lab.returncode == 130:
                raise KeyboardInterrupt
    return runs


def _run_one(cmd: list[str], log: Path, root: Path) -> int:
    """Run one lab with its output in ``log``; its own process group, stopped on Ctrl-C."""
    with log.open("w") as sink:
        process = subprocess.Popen(
            cmd, cwd=root, stdout=sink, stderr=subprocess.STDOUT, start_new_session=True
        )
        try:
            return process.wait()
        except KeyboardInterrupt:
            # The lab runs in its own session, so the terminal's Ctrl-C reached only us. Pass it
            # on (a lab stops what it started on Ctrl-C), then stop whatever is left of its group.
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGINT)
            try:
                process.wait(INTERRUPT_GRACE_S)
            except subprocess.TimeoutExpired:
                pass
            stop_process_group(process)
            raise


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
