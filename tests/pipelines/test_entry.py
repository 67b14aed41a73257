"""The flows' command line works with the venv activated (PREFECT_API_URL set) or not."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from labs.common.processes import free_port
from pipelines.entry import EXIT_NO_SERVER, run_flow_cli


def test_a_server_that_does_not_answer_is_one_line_not_a_traceback(monkeypatch, capsys) -> None:
    url = f"http://127.0.0.1:{free_port()}/api"
    monkeypatch.setenv("PREFECT_API_URL", url)
    called = []
    assert run_flow_cli("monitor", lambda: called.append(1)) == EXIT_NO_SERVER
    assert called == []
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and url in err[0] and "make prefect-up" in err[0]


def test_without_a_server_url_prefect_home_is_the_projects(
    monkeypatch, tmp_path: Path, capsys
) -> None:
    from prefect.settings import get_current_settings

    monkeypatch.delenv("PREFECT_API_URL", raising=False)
    monkeypatch.delenv("PREFECT_HOME", raising=False)
    monkeypatch.setenv("LABS_ROOT", str(tmp_path))
    seen = {}

    def flow() -> str:
        seen["home"] = Path(get_current_settings().home)
        seen["env"] = os.environ["PREFECT_HOME"]  # what a temporary server subprocess reads
        seen["analytics"] = os.environ["PREFECT_SERVER_ANALYTICS_ENABLED"]
        return "done"

    assert run_flow_cli("monitor", flow) == 0
    assert seen == {
        "home": tmp_path / ".prefect",
        "env": str(tmp_path / ".prefect"),
        "analytics": "false",
    }
    assert capsys.readouterr().out.strip() == "done"


@pytest.mark.parametrize("api_url", ["", "unreachable"])
def test_monitor_without_the_labs_files_says_what_to_run(
    api_url: str, sandbox_root: Path, repo_root: Path
) -> None:
    env = {**os.environ, "LABS_ROOT": str(sandbox_root)}
    env.pop("PREFECT_API_URL", None)
    if api_url:
        env["PREFECT_API_URL"] = f"http://127.0.0.1:{free_port()}/api"
    done = subprocess.run(
        [sys.executable, "-m", "pipelines.monitor"],
        cwd=repo_root,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 2, done.stderr[-2000:]
    assert "Traceback" not in done.stderr
    assert "run `make lab-monitoring` first" in done.stderr
