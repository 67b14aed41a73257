"""Ctrl-C of any lab: exit 130 within seconds, one line, nothing half-written, nothing left
running — sent as a real SIGINT to a real `python -m labs.<topic>` process."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from labs.common.catalogue import ready_labs

pytestmark = pytest.mark.integration


def _group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    return True


@pytest.mark.parametrize("topic", [t.id for t in ready_labs()])
def test_ctrl_c_stops_the_lab_cleanly(
    topic: str, sandbox_root: Path, repo_root: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from labs.common.processes import stop_process_group

    if topic == "versioning":  # it clones the project: give it a git checkout of its own
        clone = sandbox_root.parent / "clone"
        subprocess.run(
            ["git", "clone", "-q", "--shared", str(repo_root), str(clone)], check=True, timeout=60
        )
        monkeypatch.setenv("LABS_ROOT", str(clone))
        sandbox_root = clone

    process = subprocess.Popen(
        [sys.executable, "-m", f"labs.{topic}"],
        cwd=sandbox_root,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,  # its own group: we can check nothing of it survives
    )
    try:
        # Interrupt once the lab is at work (its first timestamped progress line).
        assert process.stdout is not None
        for line in process.stdout:
            if line.startswith("[") and "s]" in line:
                break
        time.sleep(0.5)
        os.kill(process.pid, signal.SIGINT)
        _, err = process.communicate(timeout=30)  # a hang guard: a lab that ignores ^C hangs
    finally:
        stop_process_group(process, grace=5)
    assert process.returncode == 130, err[-2000:]
    assert "Traceback" not in err
    assert err.strip().splitlines()[-1] == (
        f"lab {topic}: interrupted; what it started was stopped."
    )
    assert not (sandbox_root / "reports" / topic / "summary.json").exists()
    deadline = time.monotonic() + 10  # helpers (e.g. multiprocessing's tracker) exit on EOF
    while _group_alive(process.pid) and time.monotonic() < deadline:
        time.sleep(0.2)
    left = subprocess.run(
        ["ps", "-o", "pid,stat,args", "-g", str(process.pid)], capture_output=True, text=True
    ).stdout
    assert not _group_alive(process.pid), f"processes the lab started outlived it:\n{left}"
