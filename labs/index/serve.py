"""``make report-serve``: the ``reports/`` folder over HTTP on 127.0.0.1, until Ctrl-C.

The index also works straight from ``file://``; a server is for a browser that blocks local
files, or to look at the page from another tab of a remote session (port-forwarded).
"""

from __future__ import annotations

import functools
import signal
import threading
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import FrameType

from labs.common.processes import HOST


class QuietHandler(SimpleHTTPRequestHandler):
    """Static files, no per-request log lines."""

    def log_message(self, format: str, *args: object) -> None:
        return


def make_server(directory: Path, port: int) -> ThreadingHTTPServer:
    """A static server for ``directory`` bound to 127.0.0.1 only (``port`` 0: any free one)."""
    handler = functools.partial(QuietHandler, directory=str(directory))
    return ThreadingHTTPServer((HOST, port), handler)


def serve(directory: Path, port: int) -> int:
    """Serve until Ctrl-C or SIGTERM, then close the socket and return 0."""
    server = make_server(directory, port)
    url = f"http://{HOST}:{server.server_address[1]}/index.html"
    print(f"Evidence index on {url} (Ctrl-C stops it)", flush=True)

    def stop(signum: int, frame: FrameType | None) -> None:
        # shutdown() waits for serve_forever() to return: call it from another thread.
        threading.Thread(target=server.shutdown, daemon=True).start()

    previous = signal.signal(signal.SIGTERM, stop)
    try:
        server.serve_forever(poll_interval=0.2)
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
        signal.signal(signal.SIGTERM, previous)
    print("Evidence index server stopped.", flush=True)
    return 0
