"""The dependency rule is checked, not remembered: pipelines and the learning tools (katas) →
labs.<topic> → labs.common."""

from __future__ import annotations

import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest


def lint_imports(root: Path) -> subprocess.CompletedProcess[str]:
    exe = Path(sys.executable).with_name("lint-imports")
    return subprocess.run(
        [str(exe), "--no-cache"], cwd=root, capture_output=True, text=True, timeout=120
    )


def test_import_contracts_hold(repo_root: Path) -> None:
    result = lint_imports(repo_root)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "1 kept, 0 broken" in result.stdout


def test_every_lab_package_is_in_the_layers_contract(repo_root: Path) -> None:
    config = tomllib.loads((repo_root / "pyproject.toml").read_text())["tool"]["importlinter"]
    layers = config["contracts"][0]["layers"]
    middle = {m.strip() for m in layers[1].split("|")}
    packages = {
        f"labs.{p.name}" for p in (repo_root / "labs").iterdir() if (p / "__init__.py").exists()
    }
    assert middle == packages - {"labs.common", "labs.learning"}
    top = {m.strip() for m in layers[0].split("|")}
    assert top == {"pipelines", "labs.learning"} and layers[-1] == "labs.common"


@pytest.mark.parametrize(
    ("path", "line", "importer", "imported"),
    [
        ("labs/drift/lab.py", "import pipelines.retrain", "labs.drift", "pipelines"),
        ("labs/common/paths.py", "import labs.drift", "labs.common", "labs.drift"),
        ("labs/monitoring/__init__.py", "import labs.drift", "labs.monitoring", "labs.drift"),
        # a lab never imports the learning tools that consume it
        ("labs/drift/lab.py", "import labs.learning.katas", "labs.drift", "labs.learning"),
    ],
)  # fmt: skip
def test_a_bad_import_breaks_the_contract(
    repo_root: Path, tmp_path: Path, path: str, line: str, importer: str, imported: str
) -> None:
    copy = tmp_path / "repo"
    shutil.copytree(repo_root / "labs", copy / "labs", ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copytree(
        repo_root / "pipelines", copy / "pipelines", ignore=shutil.ignore_patterns("__pycache__")
    )
    shutil.copy(repo_root / "pyproject.toml", copy / "pyproject.toml")
    target = copy / path
    target.write_text(target.read_text() + f"\n{line}  # noqa\n")
    env_path = f"{copy}"
    result = subprocess.run(
        [str(Path(sys.executable).with_name("lint-imports")), "--no-cache"],
        cwd=copy, capture_output=True, text=True, timeout=120,
        env={"PYTHONPATH": env_path, "PATH": "/usr/bin:/bin"},
    )  # fmt: skip
    assert result.returncode != 0
    assert f"{importer} is not allowed to import {imported}" in result.stdout
