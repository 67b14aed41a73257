"""``make report-serve``: reports/ over HTTP on 127.0.0.1 only, stopped cleanly."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import httpx

from labs.common.processes import free_port, stop_process_group


def test_serves_the_index_on_loopback_and_stops_cleanly(project: Path, write_lab) -> None:
    write_lab("drift")
    port = free_port()
    server = subprocess.Popen(
        [sys.executable, "-m", "labs.index.cli", "serve", "--port", str(port)],
        env={**os.environ, "LABS_ROOT": str(project)},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                response = httpx.get(f"http://127.0.0.1:{port}/index.html", timeout=2)
                break
            except httpx.TransportError:
                assert time.monotonic() < deadline and server.poll() is None, "no server"
                time.sleep(0.2)
        assert response.status_code == 200 and 'data-topic="drift"' in response.text
        summary = httpx.get(f"http://127.0.0.1:{port}/drift/summary.json", timeout=2)
        assert summary.json()["lab"] == "drift"
        outside = httpx.get(f"http://127.0.0.1:{port}/../params.yaml", timeout=2)
        assert outside.status_code == 404
    finally:
        stop_process_group(server)
    output = server.stdout.read() if server.stdout else ""
    assert server.returncode == 0, output
    assert f"http://127.0.0.1:{port}/index.html" in output and "stopped" in output
