"""Test session set-up: offline, and one throw-away MLflow store and Prefect home per session."""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

import pytest

from labs.common.tracking import OFFLINE_ENV

_SESSION_DIR: Path | None = None


def pytest_configure(config: pytest.Config) -> None:
    global _SESSION_DIR
    _SESSION_DIR = Path(tempfile.mkdtemp(prefix="labs-tests-"))
    for key, value in OFFLINE_ENV.items():
        os.environ[key] = value
    # Never the user's mlflow.db: tests get their own store, artifacts beside it.
    os.environ["MLFLOW_TRACKING_URI"] = f"sqlite:///{_SESSION_DIR / 'mlflow.db'}"
    os.environ["PREFECT_HOME"] = str(_SESSION_DIR / "prefect")
    os.environ["PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS"] = "90"
    os.environ.setdefault("MPLBACKEND", "Agg")


def pytest_unconfigure(config: pytest.Config) -> None:
    if _SESSION_DIR is not None:
        shutil.rmtree(_SESSION_DIR, ignore_errors=True)


@pytest.fixture(scope="session")
def repo_root() -> Path:
    return Path(__file__).resolve().parents[1]
