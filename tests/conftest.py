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


@pytest.fixture(scope="session")
def prefect_harness():
    """One temporary Prefect API for the whole session (started on first use, ~10 s)."""
    from prefect.testing.utilities import prefect_test_harness

    with prefect_test_harness(server_startup_timeout=90):
        yield


@pytest.fixture
def sandbox_root(repo_root: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A throw-away project root (``LABS_ROOT``): the repo's params and prepared data, but its
    own reports/ and data/quarantine/, so tests never write into the checkout."""
    root = tmp_path / "root"
    (root / "data").mkdir(parents=True)
    shutil.copy(repo_root / "params.yaml", root / "params.yaml")
    (root / "data" / "prepared").symlink_to(repo_root / "data" / "prepared")
    monkeypatch.setenv("LABS_ROOT", str(root))
    return root
