"""Supply chain: the project installs only from ``requirements.lock``, where every pinned
package carries its sha256, and audits that lock against known advisories — both offline.

- **Hash-locked install.** A tiny wheel is built here and pinned by its sha256; then the copy
  on the "index" (a local folder) is swapped for another wheel with the same name and version
  (what a compromised mirror or a re-uploaded release serves). pip in ``--require-hashes`` mode
  installs the genuine one and refuses the swap before a byte of it is installed.
- **Dependency audit.** pip-audit checks the real lock against a local OSV feed holding
  published advisories for *older* versions of packages we lock; a copy of the lock with those
  packages moved to affected versions is audited too (each must be flagged), so "nothing found"
  means the feed knows our packages and our versions are past the fixes, not an empty feed.

The lock, the installer and the audit are parameters of :func:`measure_supply_chain`, so a
counterfactual can hand it a lock without hashes or one pinning a vulnerable version.
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
import subprocess
import sys
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

NAME, VERSION = "labs_tiny_pkg", "0.1.0"
DIST = NAME.replace("_", "-")
GENUINE = b'"""A tiny package built by the security lab."""\nVALUE = 42\n'
# The swapped wheel: same name and version, other code (harmless: it only differs).
SWAPPED = b'"""The same name and version, other bytes."""\nVALUE = "swapped"\n'


def build_tiny_wheel(directory: Path, module: bytes = GENUINE) -> Path:
    """A valid pure-Python wheel (module, METADATA, WHEEL, RECORD) written with ``zipfile``."""
    directory.mkdir(parents=True, exist_ok=True)
    dist = f"{NAME}-{VERSION}.dist-info"
    files = {
        f"{NAME}.py": module,
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
    installed: str | None  # what the installed module says (None: nothing installed)
    hash_mismatch_reported: bool


def _pip_install(wheel_dir: Path, requirement: str, target: Path, *options: str) -> InstallAttempt:
    """``pip install --no-index --find-links wheel_dir`` of one requirement line into ``target``
    (a scratch directory, never the venv); what got installed."""
    requirements = target.parent / f"{target.name}-requirements.txt"
    requirements.write_text(requirement + "\n")
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
            str(wheel_dir),
            "--no-cache-dir",
            *options,
            "--target",
            str(target),
            "-r",
            str(requirements),
        ],  # fmt: skip
        capture_output=True,
        text=True,
        timeout=120,
    )
    module = target / f"{NAME}.py"
    installed = None
    if module.exists():  # read, never import: the swapped code stays inert
        match = re.search(r"^VALUE = (.+)$", module.read_text(), re.M)
        installed = match.group(1) if match else "?"
    return InstallAttempt(
        done.returncode, installed, "DO NOT MATCH THE HASHES" in done.stderr.upper()
    )


def install_hash_locked(wheel_dir: Path, sha256: str, target: Path) -> InstallAttempt:
    """How the project installs (``make setup``): the lock line carries the sha256 and the
    installer runs in ``--require-hashes`` mode."""
    return _pip_install(
        wheel_dir, f"{DIST}=={VERSION} --hash=sha256:{sha256}", target, "--require-hashes"
    )


@dataclass(frozen=True)
class AuditResult:
    returncode: int  # pip-audit exits 1 when it finds a known vulnerability
    audited: int
    vulnerable: dict[str, list[str]]  # package → advisory ids


def pip_audit(requirements: list[Path], osv_url: str, cache_dir: Path) -> AuditResult:
    """``pip-audit`` over pinned, hashed requirement files, asking only ``osv_url`` (a local
    advisory feed): no resolution, no pip, no network."""
    command = [
        sys.executable, "-m", "pip_audit", "--no-deps", "--disable-pip", "-s", "osv",
        "--osv-url", osv_url, "--progress-spinner", "off", "-f", "json",
        "--cache-dir", str(cache_dir), "--timeout", "30",
    ]  # fmt: skip
    for path in requirements:
        command += ["-r", str(path)]
    done = subprocess.run(command, capture_output=True, text=True, timeout=300)
    try:
        report = json.loads(done.stdout)["dependencies"]
    except (ValueError, KeyError) as err:
        raise RuntimeError(f"pip-audit gave no report (exit {done.returncode}): "
                           f"{done.stderr.strip()[-500:]}") from err  # fmt: skip
    vulnerable = {d["name"]: [v["id"] for v in d["vulns"]] for d in report if d.get("vulns")}
    return AuditResult(done.returncode, len(report), vulnerable)


def lock_hash_coverage(lock: Path) -> tuple[int, int]:
    """(pinned requirements, of them with at least one sha256) in a pip-compile lock file."""
    pinned, hashed = 0, 0
    for block in _requirement_blocks(lock.read_text()):
        if re.match(r"[A-Za-z0-9][\w.\-\[\],]*==", block):
            pinned += 1
            hashed += bool(re.search(r"--hash=sha256:[0-9a-f]{64}", block))
    return pinned, hashed


def _requirement_blocks(text: str) -> list[str]:
    """One block per requirement: its "name==version" line plus backslash-continued options."""
    return re.split(r"\n(?=[A-Za-z0-9])", text)


def locked_versions(lock: Path) -> dict[str, set[str]]:
    """Package (canonical name) → the versions the lock pins (two with different markers)."""
    from packaging.utils import canonicalize_name

    out: dict[str, set[str]] = {}
    for block in _requirement_blocks(lock.read_text()):
        match = re.match(r"([A-Za-z0-9][\w.\-]*)(?:\[[^\]]*\])?==([^\s;\\]+)", block)
        if match:
            out.setdefault(canonicalize_name(match[1]), set()).add(match[2])
    return out


def project_lock(work: Path) -> Path:
    """The project's own ``requirements.lock`` (the checkout's, if the root is a sandbox)."""
    from labs.common.paths import project_root

    lock = project_root() / "requirements.lock"
    if not lock.exists():  # a sandboxed project root (LABS_ROOT) without the lock
        lock = Path(__file__).resolve().parents[2] / "requirements.lock"
    return lock


def pinned_to_affected(lock: Path, advisories: list[dict[str, Any]], target: Path) -> Path:
    """A requirements file pinning each advised package *that the lock holds* to a version its
    advisory lists as affected: the audit's positive control (it must flag every line)."""
    from packaging.utils import canonicalize_name

    from labs.security.advisories import affected_example

    held = locked_versions(lock)
    lines = []
    for record in advisories:
        name, version = affected_example(record)
        if canonicalize_name(name) in held:
            lines.append(f"{name}=={version}")
    target.write_text("\n".join(lines) + "\n")
    return target


def measure_supply_chain(
    work: Path,
    *,
    lock_file: Callable[[Path], Path] = project_lock,
    installer: Callable[[Path, str, Path], InstallAttempt] = install_hash_locked,
) -> dict[str, Any]:
    """Part 7 of the lab: the hash-locked install and the offline audit, as numbers."""
    from packaging.utils import canonicalize_name

    from labs.common.processes import serve_process
    from labs.security.advisories import ADVISORY_FILE

    work.mkdir(parents=True, exist_ok=True)
    genuine = build_tiny_wheel(work / "index")
    sha = hashlib.sha256(genuine.read_bytes()).hexdigest()
    good = installer(genuine.parent, sha, work / "genuine")
    # The index now serves other bytes under the same name and version; the pin is unchanged.
    swapped = build_tiny_wheel(work / "index", SWAPPED)
    swapped_sha = hashlib.sha256(swapped.read_bytes()).hexdigest()
    bad = installer(swapped.parent, sha, work / "swapped")

    lock = lock_file(work)
    pinned, hashed = lock_hash_coverage(lock)
    advisories = json.loads(ADVISORY_FILE.read_text())
    held = locked_versions(lock)
    advised = sorted(
        {canonicalize_name(a["package"]["name"]) for r in advisories for a in r["affected"]}
        & set(held)
    )
    control = pinned_to_affected(lock, advisories, work / "affected-pins.txt")
    with serve_process(
        lambda port: [sys.executable, "-m", "labs.security.advisories", "--port", str(port)],
        log=work / "advisories.log",
        health_path="/health",
        timeout=60,
    ) as feed:
        osv = f"{feed.url}/v1/query"
        audited = pip_audit([lock], osv, work / "audit-cache")
        controlled = pip_audit([control], osv, work / "audit-cache")
    return {
        "genuine_installed": int(good.returncode == 0 and good.installed == "42"),
        "swap_sha_differs": int(swapped_sha != sha),
        "swapped_refused": int(bad.returncode != 0 and bad.installed is None),
        "swapped_installed": int(bad.installed is not None),
        "swap_mismatch_reported": int(bad.hash_mismatch_reported),
        "lock_pinned": pinned,
        "lock_hashed": hashed,
        "advisories": len(advisories),
        "advised_locked_packages": len(advised),
        "control_flagged": len(controlled.vulnerable),
        "control_exit_code": controlled.returncode,
        "audit_packages": audited.audited,
        "audit_exit_code": audited.returncode,
        "audit_flagged_lock_packages": len(audited.vulnerable),
        "audit_flagged": sorted(f"{n} {','.join(v)}" for n, v in audited.vulnerable.items()),
    }
