"""Supply chain: the project installs only from ``requirements.lock``, where every pinned
package carries its sha256; pip/uv in ``--require-hashes`` mode refuse a file whose hash
differs. Shown offline on a tiny wheel built here (no index, no download).
"""

from __future__ import annotations

import base64
import hashlib
import re
import subprocess
import sys
import zipfile
from dataclasses import dataclass
from pathlib import Path

NAME, VERSION = "labs_tiny_pkg", "0.1.0"


def build_tiny_wheel(directory: Path) -> Path:
    """A valid pure-Python wheel (module, METADATA, WHEEL, RECORD) written with ``zipfile``."""
    directory.mkdir(parents=True, exist_ok=True)
    dist = f"{NAME}-{VERSION}.dist-info"
    files = {
        f"{NAME}.py": b'"""A tiny package built by the security lab."""\nVALUE = 42\n',
        f"{dist}/METADATA": f"Metadata-Version: 2.1\nName: {NAME}\nVersion: {VERSION}\n".encode(),
        f"{dist}/WHEEL": b"Wheel-Version: 1.0\nGenerator: labs\nRoot-Is-Purelib: true\n"
        b"Tag: py3-none-any\n",
    }
    record = []
    for name, data in files.items():
        digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
        record.append(f"{name},sha256={digest},{len(data)}")
    record.append(f"{dist}/RECORD,,")
    files[f"{dist}/RECORD"] = ("\n".join(record) + "\n").encode()
    path = directory / f"{NAME}-{VERSION}-py3-none-any.whl"
    with zipfile.ZipFile(path, "w") as wheel:
        for name, data in files.items():
            wheel.writestr(zipfile.ZipInfo(name, date_time=(1980, 1, 1, 0, 0, 0)), data)
    return path


@dataclass(frozen=True)
class InstallAttempt:
    returncode: int
    installed: bool
    hash_mismatch_reported: bool


def install_with_hash(wheel: Path, sha256: str, target: Path) -> InstallAttempt:
    """``pip install --require-hashes --no-index`` of ``wheel`` pinned to ``sha256`` into
    ``target`` (a scratch directory, never the venv)."""
    requirements = target.parent / f"{target.name}-requirements.txt"
    requirements.write_text(f"{NAME}=={VERSION} --hash=sha256:{sha256}\n")
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "install",
            "--quiet",
            "--disable-pip-version-check",
            "--no-index",
            "--find-links",
            str(wheel.parent),
            "--require-hashes",
            "--no-cache-dir",
            "--target",
            str(target),
            "-r",
            str(requirements),
        ],  # fmt: skip
        capture_output=True,
        text=True,
        timeout=120,
    )
    return InstallAttempt(
        done.returncode,
        (target / f"{NAME}.py").exists(),
        "DO NOT MATCH THE HASHES" in done.stderr.upper(),
    )


def lock_hash_coverage(lock: Path) -> tuple[int, int]:
    """(pinned requirements, of them with at least one sha256) in a pip-compile lock file."""
    text = lock.read_text()
    # One requirement = a "name==version" line plus its backslash-continued options.
    blocks = re.split(r"\n(?=[A-Za-z0-9])", text)
    pinned = [b for b in blocks if re.match(r"[A-Za-z0-9][\w.\-\[\],]*==", b)]
    hashed = [b for b in pinned if re.search(r"--hash=sha256:[0-9a-f]{64}", b)]
    return len(pinned), len(hashed)
