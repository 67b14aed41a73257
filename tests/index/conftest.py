"""A throw-away project checkout (git repo, ``LABS_ROOT``) and summaries written by the real
writer (``labs.common.results.write_summary``), for building the evidence index in tests."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from labs.common.results import Claim, LabResult, write_summary
from tests.index.browser import Browser, find_chromium


def git(root: Path, *args: str) -> str:
    done = subprocess.run(
        ["git", "-C", str(root), *args], capture_output=True, text=True, check=True, timeout=30
    )
    return done.stdout.strip()


def commit_all(root: Path, message: str) -> str:
    git(root, "add", "-A")
    git(root, "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", message)
    return git(root, "rev-parse", "HEAD")


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A git checkout with a lab package per ready lab, the shared core and params.yaml."""
    root = tmp_path / "project"
    for package in ("common", "drift", "versioning", "monitoring", "retraining"):
        (root / "labs" / package).mkdir(parents=True)
        (root / "labs" / package / "lab.py").write_text(f"# {package}\n")
    (root / "params.yaml").write_text("seed: 7\n")
    (root / "labs" / "drift" / "README.md").write_text(
        "# Lab `drift`\n\n## Follow-up questions\n\n"
        "- **How do you set thresholds?** From the false-alarm rate you can\n"
        "  afford, with `alpha` corrected.\n"
        "- **What if labels arrive late?** Watch prediction drift meanwhile.\n"
    )
    git(root, "init", "-q")
    commit_all(root, "initial")
    monkeypatch.setenv("LABS_ROOT", str(root))
    return root


SummaryWriter = Callable[..., Path]


@pytest.fixture
def write_lab(project: Path) -> SummaryWriter:
    """``write_lab("drift", claims=[...], ...)`` → ``reports/drift/summary.json`` of ``project``
    at its HEAD commit, clean, with an MLflow run; keyword arguments override fields."""

    def write(lab: str, claims: list[Claim] | None = None, **fields: Any) -> Path:
        result = LabResult(
            lab=lab,
            question=f"The question of {lab}?",
            claims=claims or [Claim("holds", "It holds.", True, {"value": 0.5})],
            mlflow={"experiment": f"lab-{lab}", "run_id": f"{lab}0run0id"},
            params={"seed": 7, "rows": 1000},
            git_commit=git(project, "rev-parse", "HEAD"),
            git_dirty=False,
            generated_at="2026-11-30T10:00:00+00:00",
            duration_s=12.3,
            versions={"python": "3.11.7", "mlflow": "3.17.2"},
        )
        for key, value in fields.items():
            setattr(result, key, value)
        return write_summary(result, project / "reports" / lab)

    return write


@pytest.fixture
def browser(tmp_path: Path) -> Iterator[Browser]:
    """Headless Chromium; skips (saying why) without one, fails if LABS_REQUIRE_BROWSER=1."""
    executable = find_chromium()
    if executable is None:
        reason = (
            "no Chromium binary on PATH (chromium, chromium-browser, google-chrome) and "
            "$CHROMIUM unset — install it with `apt-get install -y chromium`"
        )
        if os.environ.get("LABS_REQUIRE_BROWSER") == "1":
            pytest.fail(f"LABS_REQUIRE_BROWSER=1 but {reason}")
        pytest.skip(reason)
    profile = tmp_path / "chromium-profile"
    profile.mkdir()
    chrome = Browser(executable, profile)
    try:
        yield chrome
    finally:
        chrome.close()
