"""The environment, pinned: is ``requirements.lock`` fully pinned and hash-locked, does the venv
hold exactly what it pins, and does uv rebuild the same environment from the lock alone?

The rebuild runs offline, from uv's cache (which ``make setup`` filled): a fresh venv in a
scratch directory, ``uv pip sync --require-hashes`` of the lock into it (uv refuses any
requirement without an exact pin or a hash, and checks what it downloads against the hashes;
offline, it installs what its cache holds), then the fresh venv's packages against this
one's. uv is found the way the Makefile finds it. When uv is missing or cannot install
offline, the rebuild did not run and says why: the claim is then *not checked*, never passed.
"""

from __future__ import annotations

import hashlib
import shutil
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any

from labs.common.paths import project_root
from labs.reproducibility.scratch import CommandError, run_command, scratch_dir, scratch_env

LOCK_FILE = "requirements.lock"


@dataclass
class LockEntry:
    """One requirement of the lock: the line as written and its ``--hash`` options."""

    line: str
    hashes: list[str] = field(default_factory=list)


def read_lock(text: str) -> list[LockEntry]:
    """The requirements of a pip-style lock (``name==version ; marker`` + ``--hash`` lines)."""
    entries: list[LockEntry] = []
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if raw[0] not in " \t-":
            entries.append(LockEntry(line.rstrip(" \\").strip()))
        elif line.startswith("--hash=") and entries:
            entries[-1].hashes.append(line.removeprefix("--hash=").rstrip(" \\").strip())
    return entries


def lock_against_venv(lock_path: Path) -> dict[str, Any]:
    """Every requirement pinned with ``==`` and carrying a sha256, and every pin for this
    interpreter (markers evaluated) installed at exactly that version."""
    from packaging.requirements import Requirement

    entries = read_lock(lock_path.read_text())
    unpinned, unhashed, mismatched = [], [], []
    pinned = 0
    for entry in entries:
        req = Requirement(entry.line)
        specs = list(req.specifier)
        exact = len(specs) == 1 and specs[0].operator == "==" and "*" not in specs[0].version
        if not exact:
            unpinned.append(entry.line)
        if not any(h.startswith("sha256:") for h in entry.hashes):
            unhashed.append(req.name)
        if not exact or (req.marker is not None and not req.marker.evaluate()):
            continue
        pinned += 1
        try:
            installed = metadata.version(req.name)
        except metadata.PackageNotFoundError:
            installed = None
        if installed != specs[0].version:
            mismatched.append(f"{req.name}: lock {specs[0].version}, installed {installed}")
    return {
        "requirements": len(entries),
        "packages_pinned": pinned,
        "unpinned": unpinned,
        "unhashed": unhashed,
        "mismatched": mismatched,
    }


def lock_against_pyproject(root: Path, lock_path: Path) -> list[str]:
    """The requirements of ``pyproject.toml`` (dependencies and the ``dev`` extra) that apply to
    this interpreter and that the lock does not pin to a version they allow."""
    import tomllib

    from packaging.requirements import Requirement
    from packaging.utils import canonicalize_name

    project = tomllib.loads((root / "pyproject.toml").read_text())["project"]
    declared = project.get("dependencies", []) + project.get("optional-dependencies", {}).get(
        "dev", []
    )
    pins: dict[str, str] = {}
    for entry in read_lock(lock_path.read_text()):
        req = Requirement(entry.line)
        specs = list(req.specifier)
        if len(specs) == 1 and specs[0].operator == "==":
            if req.marker is None or req.marker.evaluate():
                pins[canonicalize_name(req.name)] = specs[0].version
    unmet = []
    for text in declared:
        req = Requirement(text)
        if req.marker is not None and not req.marker.evaluate({"extra": "dev"}):
            continue
        version = pins.get(canonicalize_name(req.name))
        if version is None or not req.specifier.contains(version, prereleases=True):
            unmet.append(f"{text} (lock: {version})")
    return unmet


def find_uv(*roots: Path) -> list[str] | None:
    """uv as the Makefile finds it: on PATH, else ``python3 -m uv``, else the private
    bootstrap venv ``.uv-bootstrap/`` (what CI uses) of the first of ``roots`` that has one;
    None if there is none."""
    on_path = shutil.which("uv")
    if on_path:
        return [on_path]
    python3 = shutil.which("python3")
    if python3:
        try:
            probe = subprocess.run(
                [python3, "-m", "uv", "--version"], capture_output=True, timeout=60
            )
        except (OSError, subprocess.TimeoutExpired):
            probe = None
        if probe is not None and probe.returncode == 0:
            return [python3, "-m", "uv"]
    boots = [root / ".uv-bootstrap" / "bin" / "uv" for root in roots]
    return next(([str(boot)] for boot in boots if boot.exists()), None)


def check_environment(
    root: Path, timeout_s: float, lock: Callable[[Path], str] | None = None
) -> dict[str, Any]:
    """The lock ``lock(root)`` returns (the committed one by default) against this venv, and
    the environment uv rebuilds from it; ``uv`` found the Makefile's way."""
    text = (lock or committed_lock)(root)
    with scratch_dir() as tmp:
        lock_path = tmp / LOCK_FILE
        lock_path.write_text(text)
        return {
            "sha256": hashlib.sha256(text.encode()).hexdigest(),
            "venv": lock_against_venv(lock_path),
            "pyproject_unmet": lock_against_pyproject(root, lock_path),
            # The checkout read, or the project the lab runs from (a test reads a clone).
            "rebuild": rebuild_environment(lock_path, find_uv(root, project_root()), timeout_s),
        }


def rebuild_environment(lock_path: Path, uv: list[str] | None, timeout_s: float) -> dict[str, Any]:
    """A fresh venv synced from ``lock_path`` offline with ``--require-hashes``, compared with
    this interpreter's packages (``uv pip freeze`` of both; the project itself, installed
    editable and not in the lock, is left out). ``ran=False`` and ``error`` when it could not."""
    result: dict[str, Any] = {"uv": " ".join(uv) if uv else None, "ran": False, "error": ""}
    if uv is None:
        result["error"] = "uv not found (not on PATH, no `python3 -m uv`, no .uv-bootstrap/)"
        return result
    with scratch_dir() as tmp:
        env = scratch_env(tmp, {"UV_OFFLINE": "1", "UV_PYTHON_DOWNLOADS": "never"})
        venv = tmp / "venv"
        python = venv / "bin" / "python"
        step = "uv venv"
        try:
            run_command([*uv, "venv", "--quiet", "--python", sys.executable, str(venv)],
                        tmp, env, timeout_s)  # fmt: skip
            step = "uv pip sync --offline --require-hashes"
            run_command([*uv, "pip", "sync", "--quiet", "--offline", "--require-hashes",
                         "--python", str(python), str(lock_path)], tmp, env, timeout_s)  # fmt: skip
            step = "uv pip freeze"
            fresh = _freeze(uv, python, tmp, env, timeout_s)
            current = _freeze(uv, Path(sys.executable), tmp, env, timeout_s)
        except (CommandError, subprocess.TimeoutExpired, OSError) as err:
            result["error"] = f"{step}: {_reason(err)}"
            return result
    result.update(
        ran=True,
        packages_rebuilt=len(fresh),
        packages_in_venv=len(current),
        identical=fresh == current,
        only_in_rebuild=sorted(fresh - current)[:5],
        only_in_venv=sorted(current - fresh)[:5],
    )
    return result


def _reason(err: BaseException) -> str:
    """uv's own error line (``error: …``) if it printed one, else the exception's last line."""
    if isinstance(err, subprocess.TimeoutExpired):
        return f"timed out after {err.timeout:g} s"
    lines = [ln.strip() for ln in str(err).splitlines() if ln.strip()]
    said = [ln for ln in lines if ln.startswith("error:")]
    return (said or lines or [type(err).__name__])[-1][:300]


def _freeze(
    uv: list[str], python: Path, cwd: Path, env: dict[str, str], timeout_s: float
) -> set[str]:
    out = run_command([*uv, "pip", "freeze", "--python", str(python)], cwd, env, timeout_s)
    return {line.strip().lower() for line in out.splitlines() if "==" in line}


# --- which lock the check reads --------------------------------------------------------------


def committed_lock(root: Path) -> str:
    """The project's ``requirements.lock``, as committed."""
    return (root / LOCK_FILE).read_text()
