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


# Files whose tests take longest (seconds of one core, measured with --durations on a 2-core
# machine, 2026-12). pytest-xdist (--dist loadfile) hands files to workers in collection
# order; the longest go first so the last minute is short files on both workers, not one long
# file on one of them while the other idles. Order only: a file missing here runs after these.
LONGEST_FIRST = (
    "tests/labs/test_drift.py",  # ~80 s
    "tests/labs/test_versioning.py",  # ~75 s
    "tests/labs/test_interrupt.py",  # ~75 s: Ctrl-C of every lab
    "tests/common/test_serving.py",  # ~60 s
    "tests/labs/test_testing.py",  # ~45 s
    "tests/labs/test_availability.py",  # ~45 s
    "tests/pipelines/test_backfill.py",  # ~45 s
    "tests/labs/test_scaling.py",  # ~40 s
    "tests/labs/test_deployment.py",  # ~32 s
    "tests/labs/test_monitoring.py",  # ~30 s
    "tests/pipelines/test_serve_integration.py",  # ~28 s
    "tests/pipelines/test_retrain.py",  # ~25 s
    "tests/index/test_mlflow_ui.py",  # ~24 s
    "tests/common/test_pipeline.py",  # ~20 s
    "tests/labs/test_packaging.py",  # ~17 s
    "tests/pipelines/test_retrain_kill.py",  # ~17 s
)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Run the longest files first (see LONGEST_FIRST); within a file, the written order."""
    rank = {path: i for i, path in enumerate(LONGEST_FIRST)}
    root = Path(str(config.rootpath))

    def key(item: pytest.Item) -> int:
        path = Path(str(item.path)).relative_to(root).as_posix()
        return rank.get(path, len(rank))

    items.sort(key=key)  # stable: the order inside each group stays
