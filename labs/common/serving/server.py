"""Run the serving app: in the foreground (``python -m labs.common.serving.server``) or as a managed
background process (:func:`serve_in_background`, for labs, tests and benchmarks).

The background server is started through :func:`labs.common.processes.serve_process`: its own
process group on a free port of 127.0.0.1, the caller's MLflow store through
``MLFLOW_TRACKING_URI``, ``/ready`` waited for with a timeout, and the whole group stopped on
exit, so neither a failing test nor Ctrl-C leaves a server behind.

Start-up costs seconds of imports (MLflow, scikit-learn, FastAPI). A caller that is still
registering the model can start the server with no URI (``--model-uri -``): it imports and
warms up, then reads the URI from stdin (:meth:`ServerProcess.bind`), so both happen at once.

``--bind-before-load`` listens *before* the model loads, as a replica whose model takes a while
to load does: ``/health`` answers 200 at once, ``/ready`` 503 until the model is loaded. The
load starts when the caller says so (:meth:`ServerProcess.release_load`, a line on stdin), so
a lab decides how long "loading" lasts by events it observed, not by a sleep.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from labs.common.paths import project_root
from labs.common.processes import (
    HOST,
    ProcessStartError,
    ServedProcess,
    free_port,
    serve_process,
)

if TYPE_CHECKING:
    from labs.common.serving.scoring import LoadedModel


def default_log_path() -> Path:
    """Where the server logs predictions unless told otherwise (gitignored ``logs/``)."""
    return project_root() / "logs" / "predictions.sqlite"


@dataclass
class ServerProcess:
    """A server started by :func:`serve_in_background`."""

    served: ServedProcess
    load_gate: bool = False  # started with bind_before_load: the load waits for release_load()

    @property
    def url(self) -> str:
        return self.served.url

    def bind(self, model_uri: str) -> None:
        """Tell a server started without a model URI which model to load."""
        self._tell(model_uri, close=not self.load_gate)

    def release_load(self) -> None:
        """Let a server started with ``bind_before_load`` (listening, not ready) load its model."""
        if not self.load_gate:
            raise RuntimeError("this server was not started with bind_before_load")
        self._tell("load", close=True)

    def _tell(self, line: str, *, close: bool) -> None:
        stdin = self.served.process.stdin
        if stdin is None or stdin.closed:
            raise RuntimeError("this server was started with a model URI already")
        try:
            stdin.write(f"{line}\n".encode())
            stdin.flush()
            if close:
                stdin.close()
        except BrokenPipeError as err:  # it died while warming up: say why
            raise ProcessStartError(f"the server exited early:\n{self.log_tail()}") from err

    def wait_ready(self, timeout: float = 90.0) -> None:
        """Wait until ``/ready`` answers 200; :class:`ProcessStartError` (with the server's
        last log lines) if it exits first or ``timeout`` seconds pass."""
        self.served.wait_healthy("/ready", timeout)

    def stop(self, timeout: float = 15.0) -> int | None:
        """SIGTERM the process group (uvicorn finishes in-flight requests and closes the log),
        SIGKILL it if it lingers; return the exit code."""
        return self.served.stop(timeout)

    def log_tail(self, lines: int = 15) -> str:
        return self.served.log_tail(lines)


@contextlib.contextmanager
def serve_in_background(
    model_uri: str | None,
    *,
    port: int | None = None,
    log_path: Path | None = None,
    server_log: Path | None = None,
    wait: bool = True,
    ready_timeout: float = 90.0,
    bind_before_load: bool = False,
    ready_check: str | None = None,
    app_hook: str | None = None,
) -> Iterator[ServerProcess]:
    """Start the server for ``model_uri`` on 127.0.0.1 (a free port unless ``port``), yield it
    once ready (or at once with ``wait=False``: call ``wait_ready()``), stop it on exit.

    ``model_uri=None`` starts it without a model (implies ``wait=False``): it warms up until
    :meth:`ServerProcess.bind` gives the URI. ``bind_before_load`` (implies ``wait=False``):
    it listens, alive and not ready, until :meth:`ServerProcess.release_load`.
    ``ready_check`` (``module:function``): an extra readiness condition (see ``create_app``).
    ``app_hook`` (``module:function``) wraps the app before it serves (see ``--app-hook``)."""
    from labs.common.tracking import OFFLINE_ENV, tracking_uri

    port = port or free_port()
    log_path = Path(log_path or default_log_path())
    # The child reads the same MLflow store as the caller, whether set by env or by default.
    env = {**os.environ, **OFFLINE_ENV, "MLFLOW_TRACKING_URI": tracking_uri()}
    command = [
        sys.executable, "-m", "labs.common.serving.server",
        "--model-uri", model_uri or "-", "--port", str(port), "--log-path", str(log_path),
    ]  # fmt: skip
    if bind_before_load:
        command.append("--bind-before-load")
    if ready_check:
        command += ["--ready-check", ready_check]
    if app_hook:
        command += ["--app-hook", app_hook]
    gated = model_uri is None or bind_before_load
    with serve_process(
        command,
        log=Path(server_log or log_path.with_name(f"server-{port}.log")),
        port=port,
        health_path="/ready" if wait and not gated else None,
        timeout=ready_timeout,
        env=env,
        cwd=project_root(),
        stdin_pipe=gated,
    ) as served:
        yield ServerProcess(served, load_gate=bind_before_load)


def main(argv: list[str] | None = None) -> int:
    """Serve ``--model-uri`` on 127.0.0.1 with one worker until interrupted."""
    parser = argparse.ArgumentParser(
        prog="python -m labs.common.serving.server", description=__doc__
    )
    parser.add_argument(
        "--model-uri",
        default="models:/churn-model@champion",
        help="the model to serve; '-' reads it from stdin after warming up",
    )
    parser.add_argument("--port", type=int, default=8000)
    parser.add_argument(
        "--host", default=HOST, help="bind address (0.0.0.0 only inside a container)"
    )
    parser.add_argument("--log-path", type=Path, default=None, help="prediction log (SQLite)")
    parser.add_argument("--log-level", default="warning")
    parser.add_argument(
        "--bind-before-load",
        action="store_true",
        help="listen at once (alive, not ready); load the model after a line on stdin",
    )
    parser.add_argument(
        "--ready-check", metavar="MODULE:FUNCTION", help="an extra readiness condition"
    )
    parser.add_argument(
        "--app-hook",
        default=None,
        help="module:function called with the app, returning the ASGI app to serve (labs put "
        "a deliberately broken part in front of the real app this way: a counterfactual)",
    )
    args = parser.parse_args(argv)

    import logging

    import uvicorn

    from labs.common.serving.app import create_app
    from labs.common.tracking import offline_env

    offline_env()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    log_path = args.log_path or default_log_path()
    ready_check = import_hook(args.ready_check) if args.ready_check else None
    if args.bind_before_load:
        model_uri = _uri_from_stdin() if args.model_uri == "-" else args.model_uri
        if model_uri is None:
            return 2
        print(f"serve: on http://{args.host}:{args.port}; {model_uri} loads when told (stdin)",
              flush=True)  # fmt: skip
        app = create_app(model_uri, log_path, load_gate=sys.stdin.readline,
                         ready_check=ready_check)  # fmt: skip
        uvicorn.run(app, host=args.host, port=args.port, workers=1, log_level=args.log_level)
        return 0
    served = load_served_model(args.model_uri)
    if served is None:
        return 2
    args.model_uri, loaded = served
    print(
        f"serve: {loaded.uri} (version {loaded.version}, {loaded.scorer_kind} scorer) on "
        f"http://{args.host}:{args.port}, predictions → {log_path}",
        flush=True,
    )
    app = create_app(args.model_uri, log_path, loaded=loaded, ready_check=ready_check)
    served_app = import_hook(args.app_hook)(app) if args.app_hook else app
    uvicorn.run(served_app, host=args.host, port=args.port, workers=1, log_level=args.log_level)
    return 0


def import_hook(spec: str) -> Any:
    """The function named by ``module:function`` (``--app-hook``, ``--ready-check``)."""
    import importlib

    module, _, name = spec.partition(":")
    target: Any = importlib.import_module(module)
    for part in name.split("."):
        target = getattr(target, part)
    return target


def load_served_model(model_uri: str) -> tuple[str, LoadedModel] | None:
    """A server's model, loaded before it listens: ``-`` warms up first, then reads the URI
    from stdin (see the module docstring). Returns the URI and the model, or ``None`` after
    one clear error line on stderr (the server then exits 2, no traceback)."""
    from labs.common.serving.scoring import ModelLoadError, load_model

    if model_uri == "-":
        read = _uri_from_stdin()
        if read is None:
            return None
        model_uri = read
    try:
        return model_uri, load_model(model_uri)  # skops, allowlist, registered sha256 checked
    except ModelLoadError as err:
        print(f"serve: error: {err}", file=sys.stderr, flush=True)
        return None


def _uri_from_stdin() -> str | None:
    """Warm up, then the model URI from stdin (None after an error line if there is none)."""
    from labs.common.serving.scoring import warm_up

    warm_up()
    model_uri = sys.stdin.readline().strip()
    if not model_uri:
        print("serve: error: no model URI on stdin", file=sys.stderr, flush=True)
        return None
    return model_uri


if __name__ == "__main__":
    sys.exit(main())
