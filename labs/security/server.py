"""The shared serving app behind TLS and API keys: ``python -m labs.security.server``.

It serves the registered model exactly as the project's server does (``load_model``: skops,
exact allowlist, bytes checked against the registered hash), wraps the app with
:func:`labs.security.access.protect`, and lets uvicorn terminate TLS with the lab's
certificate. Started by the lab through :func:`serve_tls` (``labs.common.processes``: own
process group, free port, stopped on exit).
"""

from __future__ import annotations

import argparse
import contextlib
import os
import ssl
import sys
import time
from collections.abc import Iterator
from pathlib import Path

from labs.common.paths import project_root
from labs.common.processes import HOST, ProcessStartError, ServedProcess, serve_process


@contextlib.contextmanager
def serve_tls(
    model_uri: str | None,
    *,
    certfile: Path,
    keyfile: Path,
    keys_file: Path,
    audit_log: Path,
    log_path: Path,
    rate_limit: int,
    rate_window_s: float,
    server_log: Path,
    dev: bool = False,
) -> Iterator[ServedProcess]:
    """Start the server (not waited for: see :func:`wait_ready`), stop its group on exit.

    ``model_uri=None``: it imports and warms up, then reads the URI from stdin (:func:`bind`),
    so the caller can train and register the model meanwhile. ``dev=True`` starts it the way
    a developer runs it (plain HTTP, no key check): only for the counterfactual."""
    from labs.common.tracking import OFFLINE_ENV, tracking_uri

    env = {**os.environ, **OFFLINE_ENV, "MLFLOW_TRACKING_URI": tracking_uri()}
    command = lambda port: [  # noqa: E731
        sys.executable, "-m", "labs.security.server", "--model-uri", model_uri or "-",
        "--port", str(port), "--certfile", str(certfile), "--keyfile", str(keyfile),
        "--keys", str(keys_file), "--audit-log", str(audit_log), "--log-path", str(log_path),
        "--rate-limit", str(rate_limit), "--rate-window", str(rate_window_s),
        *(["--dev"] if dev else []),
    ]  # fmt: skip
    with serve_process(
        command,
        log=server_log,
        health_path=None,
        env=env,
        cwd=project_root(),
        stdin_pipe=model_uri is None,
    ) as served:
        yield served


def bind(served: ServedProcess, model_uri: str) -> None:
    """Tell a server started without a model which model to serve."""
    stdin = served.process.stdin
    if stdin is None or stdin.closed:
        raise RuntimeError("this server was started with a model URI already")
    try:
        stdin.write(f"{model_uri}\n".encode())
        stdin.close()
    except BrokenPipeError as err:
        raise ProcessStartError(f"the TLS server exited early:\n{served.log_tail()}") from err


def https_url(served: ServedProcess) -> str:
    return f"https://{HOST}:{served.port}"


def wait_ready(served: ServedProcess, ca_cert: Path, timeout: float = 90.0) -> tuple[float, str]:
    """Poll ``/ready`` over TLS trusting only ``ca_cert`` (and over plain HTTP, in case the
    server was started without TLS); seconds taken and the base URL that answered. Fails fast
    (with the server's log) if it exits."""
    import httpx

    context = ssl.create_default_context(cafile=str(ca_cert))
    start = time.monotonic()
    while time.monotonic() - start < timeout:
        if served.process.poll() is not None:
            raise ProcessStartError(
                f"the TLS server exited with code {served.process.returncode}:\n{served.log_tail()}"
            )
        for url in (https_url(served), f"http://{HOST}:{served.port}"):
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(f"{url}/ready", verify=context, timeout=2).status_code == 200:
                    return time.monotonic() - start, url
        time.sleep(0.2)
    raise ProcessStartError(f"TLS server not ready after {timeout:.0f} s:\n{served.log_tail()}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m labs.security.server", description=__doc__)
    parser.add_argument("--model-uri", required=True)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--certfile", type=Path, required=True)
    parser.add_argument("--keyfile", type=Path, required=True)
    parser.add_argument("--keys", type=Path, required=True, help="hashed API keys (JSON)")
    parser.add_argument("--audit-log", type=Path, required=True)
    parser.add_argument("--log-path", type=Path, required=True, help="prediction log (SQLite)")
    parser.add_argument("--rate-limit", type=int, default=50)
    parser.add_argument("--rate-window", type=float, default=60.0)
    parser.add_argument("--dev", action="store_true", help="plain HTTP, no key check (never)")
    args = parser.parse_args(argv)

    import uvicorn

    from labs.common.serving.app import create_app
    from labs.common.serving.server import load_served_model
    from labs.common.tracking import offline_env
    from labs.security.access import RateLimiter, protect, read_key_file

    offline_env()
    served = load_served_model(args.model_uri)
    if served is None:
        return 2
    args.model_uri, loaded = served
    app = create_app(args.model_uri, args.log_path, loaded=loaded)
    if not args.dev:
        protect(
            app,
            read_key_file(args.keys),
            RateLimiter(args.rate_limit, args.rate_window),
            args.audit_log,
        )
    tls = {} if args.dev else {"ssl_certfile": str(args.certfile), "ssl_keyfile": str(args.keyfile)}
    scheme = "http" if args.dev else "https"
    print(f"serve: {loaded.uri} v{loaded.version} on {scheme}://{HOST}:{args.port}", flush=True)
    uvicorn.run(app, host=HOST, port=args.port, workers=1, log_level="warning", **tls)
    return 0


if __name__ == "__main__":
    sys.exit(main())
