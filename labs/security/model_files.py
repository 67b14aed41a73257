"""Untrusted model files: what a pickle does on load, what a scanner sees, what an allowlist
refuses, and a registered model whose bytes changed.

Every payload here is harmless: it writes a marker file into a scratch directory. Pickles are
only ever *loaded* in a child process (``python -c "pickle.load(...)"``), so the lab measures
"the payload ran" by whether the marker appeared, without running it in the lab itself.
"""

from __future__ import annotations

import io
import pickle
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from labs.common.tracking import UntrustedModelError, load_model_file


class _Reduce:
    """An object whose pickle is "call ``func(*args)`` when loaded" — the whole attack."""

    def __init__(self, func: Any, args: tuple[Any, ...]) -> None:
        self.func, self.args = func, args

    def __reduce__(self) -> tuple[Any, tuple[Any, ...]]:
        return self.func, self.args


def payload_pickles(marker_dir: Path) -> dict[str, bytes]:
    """Two malicious pickles, each writing its own marker file when unpickled.

    ``exec``: the textbook payload, a builtin on every scanner's denylist.
    ``pathlib``: ``pathlib.Path.write_text(marker, ...)`` — an ordinary standard-library
    method, on no denylist, with the same effect (it could as well overwrite ``~/.bashrc``).
    """
    exec_marker, path_marker = marker_dir / "exec.marker", marker_dir / "pathlib.marker"
    source = f"open({str(exec_marker)!r}, 'w').write('payload ran')"
    return {
        "exec": pickle.dumps(_Reduce(exec, (source,)), protocol=4),
        "pathlib": pickle.dumps(_Reduce(Path.write_text, (path_marker, "payload ran")), protocol=4),
    }


def marker_for(name: str, marker_dir: Path) -> Path:
    return marker_dir / f"{name}.marker"


def load_pickle_in_child(path: Path, timeout: float = 30.0) -> int:
    """``pickle.load`` the file in a fresh Python process (never in the lab); its exit code."""
    code = "import pickle, sys; pickle.load(open(sys.argv[1], 'rb'))"
    done = subprocess.run(
        [sys.executable, "-c", code, str(path)],
        capture_output=True,
        timeout=timeout,
        env={"PATH": "/usr/bin:/bin", "PYTHONDONTWRITEBYTECODE": "1"},
    )
    return done.returncode


@dataclass(frozen=True)
class ScanVerdict:
    """What picklescan says about one file."""

    dangerous: int  # globals on its denylist → it reports an issue
    suspicious: int  # globals on neither list (a fitted scikit-learn model has many)
    names: tuple[str, ...]


def picklescan(data: bytes, name: str) -> ScanVerdict:
    """Scan pickle bytes with ``picklescan`` (its denylist of dangerous globals)."""
    from picklescan.scanner import SafetyLevel, scan_pickle_bytes

    result = scan_pickle_bytes(io.BytesIO(data), name)
    levels = [g.safety for g in result.globals]
    return ScanVerdict(
        dangerous=sum(level == SafetyLevel.Dangerous for level in levels),
        suspicious=sum(level == SafetyLevel.Suspicious for level in levels),
        names=tuple(sorted(f"{g.module}.{g.name}" for g in result.globals)),
    )


def allowlist_refuses(path: Path, load_file: Any = load_model_file) -> tuple[bool, str]:
    """Hand the file to the project's loader (skops, exact allowlist): refused, and why.

    A pickle is not a skops archive, so it is refused before a byte of it is interpreted;
    a skops file naming a type outside :data:`labs.common.tracking.ALLOWED_TYPES` is refused
    by name. Only a refusal the loader raises on purpose counts."""
    import zipfile

    try:
        load_file(path)
    except UntrustedModelError as err:
        return True, f"UntrustedModelError: {str(err)[:160]}"
    except zipfile.BadZipFile as err:  # skops reads a zip archive; a pickle is not one
        return True, f"not a skops archive ({err})"
    return False, "loaded"


def skops_with_untrusted_function() -> bytes:
    """A skops file whose model calls ``os.system`` (a FunctionTransformer): skops itself
    stores it fine; only the allowlist decides whether it is loaded."""
    import os

    import skops.io
    from sklearn.preprocessing import FunctionTransformer

    return skops.io.dumps(FunctionTransformer(func=os.system))


def flip_byte(path: Path, offset: int | None = None) -> bytes:
    """Flip one bit of one byte (the middle one unless ``offset``); return the original bytes."""
    original = path.read_bytes()
    changed = bytearray(original)
    where = len(changed) // 2 if offset is None else offset
    changed[where] ^= 0x01
    path.write_bytes(bytes(changed))
    return original
