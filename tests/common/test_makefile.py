"""The Makefile is the menu: help lists targets, an unknown lab gets a helpful error."""

from __future__ import annotations

import subprocess
from pathlib import Path

from labs.common.paths import labs_available


def make(repo_root: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["make", "-s", *args], cwd=repo_root, capture_output=True, text=True, timeout=60
    )


def test_help_is_the_default_and_lists_every_target(repo_root: Path) -> None:
    result = make(repo_root)
    assert result.returncode == 0
    for target in ("setup", "test", "lock", "bench", "mlflow-ui", "repro"):
        assert f"  {target} " in result.stdout or f"m{target} " in result.stdout, target
    for lab in labs_available():
        line = next(ln for ln in result.stdout.splitlines() if f"lab-{lab}" in ln)
        assert "?" in line, f"lab-{lab} shows no interview question: {line}"


def test_unknown_lab_lists_the_labs(repo_root: Path) -> None:
    result = make(repo_root, "lab-nosuchthing")
    assert result.returncode != 0
    assert "there is no lab 'nosuchthing'" in result.stderr
    for lab in labs_available():
        assert f"make lab-{lab}" in result.stderr


def test_every_lab_target_has_a_lab_and_every_lab_a_target(repo_root: Path) -> None:
    help_text = make(repo_root).stdout
    targets = sorted(
        line.split()[0].removeprefix("lab-")
        for line in help_text.splitlines()
        if line.strip().startswith("lab-")
    )
    assert targets == labs_available()
    assert "drift" in targets
