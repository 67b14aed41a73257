"""make stack-up notices a server that dies at once, says why, and leaves nothing running."""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

import pytest

from labs.common.processes import ProcessStartError
from pipelines.stack import client_env, read_state, start, status, stop

pytestmark = pytest.mark.integration


def test_a_database_that_cannot_start_fails_up_at_once_with_its_log() -> None:
    base = Path(tempfile.mkdtemp(prefix="labs-stack-broken-"))
    try:
        # a data directory from "another version": PostgreSQL refuses it and exits
        data = base / "pg" / "data"
        data.mkdir(parents=True)
        (data / "PG_VERSION").write_text("9\n")
        (base / "pg" / "password").write_text("unused")
        # its exit ends the start ("exited with code"), not the 120 s timeout
        with pytest.raises(ProcessStartError, match="postgres exited with code") as err:
            start(base, timeout=120)
        # the end of PostgreSQL's own log says why
        assert "could not access the server configuration file" in str(err.value)
        assert read_state(base) is None and status(base) == {} and stop(base) == []
    finally:
        shutil.rmtree(base, ignore_errors=True)


def test_the_client_side_of_the_switch_is_three_addresses() -> None:
    state = {
        "mlflow": {"url": "http://127.0.0.1:1"},
        "prefect": {"api_url": "http://h:2/api"},
        "dask-scheduler": {"address": "tcp://h:3"},
    }
    assert client_env(state) == {
        "MLFLOW_TRACKING_URI": "http://127.0.0.1:1",
        "PREFECT_API_URL": "http://h:2/api",
        "DASK_SCHEDULER_ADDRESS": "tcp://h:3",
    }
