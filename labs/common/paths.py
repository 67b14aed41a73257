"""Where things live: the project root and the folders under it. Nothing is created at import."""

from __future__ import annotations

import os
from pathlib import Path


def project_root() -> Path:
    """The repository root: ``$LABS_ROOT`` if set, else the folder that holds ``labs/``."""
    env = os.environ.get("LABS_ROOT")
    return Path(env).resolve() if env else Path(__file__).resolve().parents[2]


def resolve(path: str | Path) -> Path:
    """``path`` as given if absolute, else relative to :func:`project_root` (not the cwd)."""
    path = Path(path)
    return path if path.is_absolute() else project_root() / path


def params_file() -> Path:
    return project_root() / "params.yaml"


def reports_dir(topic: str) -> Path:
    """``reports/<topic>/``, created on first use."""
    path = project_root() / "reports" / topic
    path.mkdir(parents=True, exist_ok=True)
    return path


def labs_available() -> list[str]:
    """Every lab topic: a package under ``labs/`` runnable as ``python -m labs.<topic>``."""
    base = Path(__file__).resolve().parents[1]
    return sorted(p.name for p in base.iterdir() if (p / "__main__.py").exists())
