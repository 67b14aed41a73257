"""make prefect-up notices at once when it cannot work: a taken port, a server that died."""

from __future__ import annotations

import socket
import sys
from pathlib import Path

import pytest

from labs.common.processes import free_port
from pipelines.local import LocalPrefect, PortInUseError, port_user, start, wait_until


def test_a_taken_port_is_refused_at_once_naming_the_port(tmp_path: Path) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        port = sock.getsockname()[1]
        assert port_user(port) is not None
        # refused by the check before any server starts (a start would end in a TimeoutError
        # after 120 s, not in this error)
        with pytest.raises(PortInUseError, match=f"port {port} on 127.0.0.1 is in use by"):
            start(LocalPrefect(home=tmp_path / "prefect", port=port), timeout=120)
    assert port_user(free_port()) is None


def test_a_process_that_dies_fails_the_wait_at_once_with_its_log(tmp_path: Path) -> None:
    import subprocess

    log = tmp_path / "server.log"
    pid_file = tmp_path / "server.pid"
    with log.open("w") as out:
        child = subprocess.Popen(
            [sys.executable, "-c", "import sys; print('boom: address in use'); sys.exit(1)"],
            stdout=out,
        )
    pid_file.write_text(str(child.pid))
    from pipelines.local import _alive

    # the process's death ends the wait ("exited before it was ready"), not the 120 s timeout
    with pytest.raises(TimeoutError, match="exited before it was ready") as err:
        wait_until(lambda: False, 120, "Prefect server", log, alive=lambda: _alive(pid_file))
    assert "boom: address in use" in str(err.value)
