"""The command-line door of the flows (``python -m pipelines.monitor``, ``python -m
pipelines.serve``): the same behaviour with the venv activated or not.

- ``PREFECT_API_URL`` set (the activated venv sets it to ``make prefect-up``'s server): the
  server must answer, else one line says how to start it — not Prefect's 100-line traceback.
- Not set: the run gets a temporary server of its own that dies with it
  (:func:`pipelines.local.temporary_server`; not Prefect's own, which a killed run leaves
  running); its home (SQLite, logs) is the project's ``.prefect/`` (or ``$PREFECT_HOME``),
  never ``~/.prefect``.
- SIGTERM stops a run like Ctrl-C (exit 130): ``finally`` blocks run, so its MLflow run ends
  KILLED and its server is stopped.
- Telemetry of Prefect, MLflow and DVC is off either way.
"""

from __future__ import annotations

import os
import sys
import urllib.error
import urllib.request
from collections.abc import Callable
from typing import Any

EXIT_NO_SERVER = 2


def prefect_api_answers(api_url: str, timeout: float = 3.0) -> bool:
    """Whether a Prefect server answers ``GET <api_url>/health`` with 200."""
    try:
        with urllib.request.urlopen(f"{api_url.rstrip('/')}/health", timeout=timeout) as answer:
            return answer.status == 200
    except (OSError, urllib.error.URLError, ValueError):
        return False


def run_flow_cli(name: str, call: Callable[[], Any]) -> int:
    """Run ``call`` (a flow, or ``serve(...)``) as the command ``python -m pipelines.<name>``;
    print what it returns. Exit 0, 2 with one line when ``PREFECT_API_URL`` names a server
    that does not answer, 130 on Ctrl-C or SIGTERM. Call it from the main thread."""
    from labs.common.entry import EXIT_INTERRUPTED, interrupt_on_signals

    try:
        with interrupt_on_signals():
            return _run_flow_cli(name, call)
    except KeyboardInterrupt:
        print(f"{name}: interrupted; what it started was stopped.", file=sys.stderr)
        return EXIT_INTERRUPTED


def _run_flow_cli(name: str, call: Callable[[], Any]) -> int:
    from labs.common.paths import project_root
    from labs.common.tracking import OFFLINE_ENV
    from pipelines.local import temporary_server

    for key, value in OFFLINE_ENV.items():
        os.environ.setdefault(key, value)
    api_url = os.environ.get("PREFECT_API_URL", "").strip()
    if api_url:
        if not prefect_api_answers(api_url):
            print(
                f"{name}: no Prefect server answers at {api_url} (PREFECT_API_URL). Start one "
                "with `make prefect-up`, or unset PREFECT_API_URL to run on a temporary server.",
                file=sys.stderr,
            )
            return EXIT_NO_SERVER
        result = call()
    else:
        from prefect.settings import PREFECT_HOME, temporary_settings

        home = os.environ.get("PREFECT_HOME") or str(project_root() / ".prefect")
        os.environ["PREFECT_HOME"] = home  # the temporary server is a subprocess: it reads env
        with temporary_settings(updates={PREFECT_HOME: home}), temporary_server():
            result = call()
    if result is not None:
        print(result)
    return 0
