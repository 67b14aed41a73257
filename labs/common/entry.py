"""The door of every lab: ``python -m labs.<topic> [-v]`` runs :func:`lab_main`.

It prints the question first, loads the lab's ``params.yaml`` section strictly, runs the lab
with timestamped progress, writes the contract-v2 summary and prints it. Exit codes: 0 every
claim holds, 1 a claim fails, 2 a typed refusal (one readable line), 130 on Ctrl-C or SIGTERM.

The same door runs the lab's counterfactuals (:mod:`labs.common.counterfactuals`):
``--list-counterfactuals``; ``--counterfactual NAME`` runs the lab with one of them substituted
(its report goes to ``reports/<topic>/counterfactuals/NAME/``, the real summary is untouched;
exit 0 when every claim it names turned ✗, 1 otherwise); ``--audit [--json FILE]`` runs the
lab as it is and under each counterfactual on small parameters (``make claims-audit``).
"""

from __future__ import annotations

import contextlib
import signal
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from labs.common.counterfactuals import LabCounterfactuals
from labs.common.errors import Refusal
from labs.common.results import LabResult, finish, format_summary, stamp

EXIT_PASSED, EXIT_CLAIM_FAILED, EXIT_REFUSED, EXIT_INTERRUPTED = 0, 1, 2, 130


def lab_main(
    topic: str,
    section: str,
    params_cls: type,
    run: Callable[..., LabResult],
    counterfactuals: LabCounterfactuals | None = None,
    argv: list[str] | None = None,
) -> int:
    """The body of every ``python -m labs.<topic> [-v]``: the question first, parameters from
    ``params.yaml`` → ``section`` (strict), progress lines stamped with the seconds since start,
    then :func:`finish`.

    Exit 0 if every claim holds, 1 if one fails, 2 with one readable line for any typed
    :class:`~labs.common.errors.Refusal` (bad params, a registry move refused, an untrusted
    model), 130 on Ctrl-C (a lab stops what it started in its own ``finally`` blocks).
    Library chatter (INFO logs, warnings) is off unless ``-v``. The counterfactual options
    are described in the module's docstring.
    """
    import argparse

    parser = argparse.ArgumentParser(prog=f"python -m labs.{topic}")
    parser.add_argument("-v", "--verbose", action="store_true", help="library logs and warnings")
    group = parser.add_mutually_exclusive_group()
    group.add_argument("--counterfactual", metavar="NAME", help="run with one counterfactual")
    group.add_argument("--audit", action="store_true", help="every counterfactual, small params")
    group.add_argument("--list-counterfactuals", action="store_true")
    parser.add_argument("--json", type=Path, help="with --audit: write the audit here")
    args = parser.parse_args(sys.argv[1:] if argv is None else argv)
    wants_cf = args.counterfactual or args.audit or args.list_counterfactuals
    if wants_cf and counterfactuals is None:
        print(f"lab {topic}: names no counterfactuals", file=sys.stderr)
        return EXIT_REFUSED
    with contextlib.nullcontext() if args.verbose else quiet_libraries():
        if args.list_counterfactuals:
            assert counterfactuals is not None
            for c in counterfactuals.counterfactuals:
                print(f"{c.name:<36} breaks {', '.join(c.breaks)}\n    {c.title}: {c.story}")
            return EXIT_PASSED
        if args.audit:
            assert counterfactuals is not None
            return _audit(topic, section, params_cls, counterfactuals, args.json)
        if args.counterfactual:
            assert counterfactuals is not None
            return _run_counterfactual(
                topic, section, params_cls, counterfactuals, args.counterfactual
            )
        return _run_lab(topic, section, params_cls, run)


def _run_lab(topic: str, section: str, params_cls: type, run: Callable[..., LabResult]) -> int:
    from labs.common.catalogue import topic as catalogue_topic
    from labs.common.params import params_for
    from labs.common.paths import reports_dir

    entry = catalogue_topic(topic)
    print(f"Lab {topic} — {entry.question}", flush=True)
    try:
        params = params_for(params_cls, section)
    except (Refusal, ValueError, TypeError) as err:  # a missing/unknown key, a bad value
        print(f"lab {topic}: error in params.yaml → {section}: {err}", file=sys.stderr)
        return EXIT_REFUSED
    start = time.perf_counter()

    def echo(line: str) -> None:
        print(f"[{time.perf_counter() - start:5.1f}s] {line}" if line else "", flush=True)

    out_dir = reports_dir(topic)
    try:
        with interrupt_on_signals(), run_lock(out_dir, topic):
            result = run(params, out_dir, echo=echo)
    except Refusal as err:  # refused on purpose; bugs keep their traceback
        print(f"lab {topic}: refused: {err}", file=sys.stderr)
        return EXIT_REFUSED
    except KeyboardInterrupt:
        print(f"\nlab {topic}: interrupted; what it started was stopped.", file=sys.stderr)
        return EXIT_INTERRUPTED
    if result.question != entry.question:  # one catalogue, one wording
        raise AssertionError(f"lab {topic} asks {result.question!r}; catalogue: {entry.question!r}")
    stamp(result, params=params, started=start)
    print()
    return finish(result, out_dir)


def _run_counterfactual(
    topic: str, section: str, params_cls: type, spec: LabCounterfactuals, name: str
) -> int:
    """The lab with one counterfactual substituted, on its ``params.yaml`` parameters."""
    from labs.common.params import params_for
    from labs.common.paths import reports_dir

    try:
        cf = spec.get(name)
        params = params_for(params_cls, section)
    except (Refusal, ValueError, TypeError) as err:
        print(f"lab {topic}: {err}", file=sys.stderr)
        return EXIT_REFUSED
    print(f"Lab {topic} with the counterfactual {cf.name!r} — {cf.title}", flush=True)
    print(f"  {cf.story}", flush=True)
    start = time.perf_counter()

    def echo(line: str) -> None:
        print(f"[{time.perf_counter() - start:5.1f}s] {line}" if line else "", flush=True)

    out_dir = reports_dir(topic) / "counterfactuals" / cf.name
    try:
        with interrupt_on_signals(), run_lock(reports_dir(topic), topic):
            result = spec.run_with(cf, params, out_dir, echo=echo)
    except Refusal as err:
        print(f"lab {topic}: refused: {err}", file=sys.stderr)
        return EXIT_REFUSED
    except KeyboardInterrupt:
        print(f"\nlab {topic}: interrupted; what it started was stopped.", file=sys.stderr)
        return EXIT_INTERRUPTED
    print()
    print(format_summary(result))
    held = [c for c in cf.breaks if result.claim(c).passed]
    if held:
        print(f"\nThe counterfactual was NOT caught: {', '.join(held)} still hold.")
        return EXIT_CLAIM_FAILED
    print(f"\nCaught: {', '.join(cf.breaks)} turned ✗ under {cf.name!r}, as they should.")
    return EXIT_PASSED


def _audit(
    topic: str, section: str, params_cls: type, spec: LabCounterfactuals, json_path: Path | None
) -> int:
    """The lab as it is and under each counterfactual on the audit's small parameters, each
    in a throw-away folder and MLflow store; one line per claim; 0 only if every claim holds as
    it is and fails under each counterfactual that names it."""
    import json
    import os
    import tempfile

    from labs.common.claims_audit import audit_lab, format_audit
    from labs.common.params import params_for

    try:
        params = spec.small(params_for(params_cls, section))
    except (Refusal, ValueError, TypeError) as err:
        print(f"lab {topic}: error in params.yaml → {section}: {err}", file=sys.stderr)
        return EXIT_REFUSED
    start = time.perf_counter()

    def echo(line: str) -> None:
        print(f"[{time.perf_counter() - start:5.1f}s] {topic}: {line}", flush=True)

    with tempfile.TemporaryDirectory(prefix=f"audit-{topic}-") as tmp:
        # The audit's runs are not the user's: their MLflow runs and registered models go to a
        # store that is deleted with the folder (unless the caller chose one).
        saved = os.environ.get("MLFLOW_TRACKING_URI")
        if not os.environ.get("LABS_AUDIT_KEEP_STORE"):
            os.environ["MLFLOW_TRACKING_URI"] = f"sqlite:///{Path(tmp) / 'mlflow.db'}"
        try:
            with interrupt_on_signals():
                audit = audit_lab(spec, params, Path(tmp), echo=echo)
        except KeyboardInterrupt:
            print(f"\nlab {topic}: audit interrupted; its runs were stopped.", file=sys.stderr)
            return EXIT_INTERRUPTED
        finally:
            if saved is None:
                os.environ.pop("MLFLOW_TRACKING_URI", None)
            else:
                os.environ["MLFLOW_TRACKING_URI"] = saved
    print(format_audit([audit]))
    if json_path is not None:
        json_path.parent.mkdir(parents=True, exist_ok=True)
        json_path.write_text(json.dumps(audit.to_dict(), indent=2) + "\n")
    return EXIT_PASSED if audit.ok else EXIT_CLAIM_FAILED


class Interrupted(KeyboardInterrupt):
    """Ctrl-C (SIGINT) or SIGTERM while a lab runs; ``finally`` blocks stop what it started.

    A subclass on purpose. CPython remembers a *bare* ``KeyboardInterrupt`` that left code run
    by ``exec()`` of a string (dataclasses, namedtuples and pydantic models do that while a lazy
    import runs) as "unhandled", and under ``python -m`` it then ends the process by SIGINT
    after the interpreter shut down, even though the lab caught it and returned 130: the
    caller saw a signal death (-2) instead of exit code 130. That check matches the exact type
    only, so this subclass never sets it.
    """


@contextlib.contextmanager
def interrupt_on_signals() -> Iterator[None]:
    """Inside the block, SIGTERM and SIGINT raise :class:`Interrupted`: a ``kill`` stops the
    program like Ctrl-C, so its ``finally`` blocks stop what it started (a default SIGTERM ends
    Python at once: no ``finally``, no ``atexit``, its servers orphaned). The previous handlers
    come back on exit. Call it from the main thread (Python's rule for signal handlers).

    SIGINT too: Ctrl-C must stop a program even when it was started from a shell that ignores
    SIGINT (a background job of a script, nohup, some CI runners): Python keeps an inherited
    "ignore".

    An interrupt is never lost. Python runs a signal handler wherever the main thread is, also
    inside a garbage-collection callback (SQLAlchemy's registry cleans up that way), where an
    exception is only printed ("Exception ignored in …") and the program goes on — a Ctrl-C of
    the retraining lab once ran the lab to the end and exited 0. Such a swallowed interrupt is
    sent again from another thread a moment later, when the main thread has left the
    callback; and a block that still ends normally after an interrupt raises it on exit.
    """
    import os
    import threading

    seen: list[int] = []

    def handler(signum: int, frame: Any) -> None:
        seen.append(signum)
        raise Interrupted(f"signal {signum}")

    def unraisable(info: Any) -> None:
        if isinstance(info.exc_value, Interrupted) and seen:
            threading.Timer(0.05, os.kill, (os.getpid(), seen[-1])).start()
            return
        previous_hook(info)

    previous_hook = sys.unraisablehook
    previous = signal.signal(signal.SIGTERM, handler)
    previous_int = signal.signal(signal.SIGINT, handler)
    sys.unraisablehook = unraisable
    try:
        yield
        if seen:  # every delivery was swallowed by code that ignores exceptions
            raise Interrupted(f"signal {seen[-1]}")
    except Exception as err:
        # A library's error while it handled the interrupt (Prefect: "Task run is not set"
        # when a task is interrupted while it starts) is still an interrupt — also when the
        # library's own SIGTERM handler (Prefect's flow engine installs one) took the signal
        # and its TerminationSignal is in the error's context.
        if seen or stopped_from_outside(err):
            raise Interrupted(f"signal {seen[-1] if seen else signal.SIGTERM}") from err
        raise
    finally:
        signal.signal(signal.SIGTERM, previous)
        signal.signal(signal.SIGINT, previous_int)
        sys.unraisablehook = previous_hook


def stopped_from_outside(err: BaseException) -> bool:
    """Whether ``err`` means the program was stopped (Ctrl-C, SIGTERM, a scheduler's
    termination) rather than failed: not an ``Exception``, or an error raised while an
    interrupt was being handled (one in its ``__context__`` chain)."""
    seen: set[int] = set()
    current: BaseException | None = err
    while current is not None and id(current) not in seen:
        if not isinstance(current, Exception):
            return True
        seen.add(id(current))
        current = current.__cause__ or current.__context__
    return False


class LabBusyError(Refusal):
    """The same lab is already running: two runs would overwrite each other's results."""


@contextlib.contextmanager
def run_lock(out_dir: Path, topic: str) -> Iterator[None]:
    """One run of a lab at a time (its reports, registered model and scratch space are its
    own): a second run is refused at once, naming the running one's pid. The lock is the
    kernel's, so a killed run never leaves a stale lock behind."""
    import fcntl
    import os

    path = out_dir / ".run.lock"
    with path.open("a+") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.seek(0)
            pid = handle.read().strip() or "?"
            raise LabBusyError(
                f"another run of lab {topic} is running (pid {pid}); wait for it or stop it"
            ) from None
        handle.seek(0)
        handle.truncate()
        handle.write(str(os.getpid()))
        handle.flush()
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


_QUIET_LOGGERS = ("mlflow", "alembic", "prefect", "evidently", "httpx", "urllib3", "numba", "shap")
_QUIET_ENV = {
    "PYTHONWARNINGS": "ignore",
    "MLFLOW_LOGGING_LEVEL": "WARNING",
    "PREFECT_LOGGING_LEVEL": "WARNING",
}


@contextlib.contextmanager
def quiet_libraries() -> Iterator[None]:
    """INFO logs and warnings of MLflow, Prefect, Evidently and friends off while a lab runs
    (``-v`` keeps them), in this process and in every process the lab starts (sidecars,
    servers, DVC stages). Everything is put back on exit: a lab run inside a longer-lived
    process (a test session, a notebook) must not silence that process's Prefect flow logs."""
    import logging
    import os
    import warnings

    levels = {name: logging.getLogger(name).level for name in _QUIET_LOGGERS}
    env = {key: os.environ.get(key) for key in _QUIET_ENV}
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore")
        for key, value in _QUIET_ENV.items():
            os.environ.setdefault(key, value)
        for name in _QUIET_LOGGERS:
            logging.getLogger(name).setLevel(logging.WARNING)
        try:
            yield
        finally:
            for name, level in levels.items():
                logging.getLogger(name).setLevel(level)
            for key, value in env.items():
                if value is None:
                    os.environ.pop(key, None)
                else:
                    os.environ[key] = value
