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
from typing import Any

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


@dataclass(frozen=True)
class AuditResult:
    returncode: int  # pip-audit exits 1 when it finds a known vulnerability
    audited: int
    vulnerable: dict[str, list[str]]  # package → advisory ids


def pip_audit(requirements: list[Path], osv_url: str, cache_dir: Path) -> AuditResult:
    """``pip-audit`` over pinned, hashed requirement files, asking only ``osv_url`` (a local
    advisory feed): no resolution, no pip, no network."""
    import json

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
    text = lock.read_text()
    # One requirement = a "name==version" line plus its backslash-continued options.
    blocks = re.split(r"\n(?=[A-Za-z0-9])", text)
    pinned = [b for b in blocks if re.match(r"[A-Za-z0-9][\w.\-\[\],]*==", b)]
    hashed = [b for b in pinned if re.search(r"--hash=sha256:[0-9a-f]{64}", b)]
    return len(pinned), len(hashed)


def measure_supply_chain(work: Path) -> dict[str, Any]:
    """Part 7 of the lab: the hash-locked install and the offline audit, as numbers."""
    import hashlib

    from labs.common.paths import project_root
    from labs.common.processes import serve_process

    wheel = build_tiny_wheel(work / "wheels")
    real = hashlib.sha256(wheel.read_bytes()).hexdigest()
    fake = ("0" if real[0] != "0" else "1") + real[1:]
    good = install_with_hash(wheel, real, work / "good")
    bad = install_with_hash(wheel, fake, work / "tampered")
    lock = project_root() / "requirements.lock"
    if not lock.exists():  # a sandboxed project root (LABS_ROOT) without the lock: the checkout's
        lock = Path(__file__).resolve().parents[2] / "requirements.lock"
    pinned, hashed = lock_hash_coverage(lock)
    # The dependency audit, offline: the lock plus the tiny package, checked against the
    # advisory file shipped with the lab (one planted advisory, for the tiny package).
    tiny = work / "tiny-requirements.txt"
    tiny.write_text(f"{NAME.replace('_', '-')}=={VERSION} --hash=sha256:{real}\n")
    with serve_process(
        lambda port: [sys.executable, "-m", "labs.security.advisories", "--port", str(port)],
        log=work / "advisories.log",
        health_path="/health",
        timeout=60,
    ) as feed:
        audit_result = pip_audit([tiny, lock], f"{feed.url}/v1/query", work / "audit-cache")
    flagged = audit_result.vulnerable
    return {
        "true_hash_installed": int(good.installed and good.returncode == 0),
        "tampered_hash_refused": int(bad.returncode != 0 and not bad.installed),
        "tampered_hash_mismatch_reported": int(bad.hash_mismatch_reported),
        "lock_pinned": pinned,
        "lock_hashed": hashed,
        "audit_packages": audit_result.audited,
        "audit_exit_code": audit_result.returncode,
        "audit_flagged_tiny_pkg": int(
            flagged.get(NAME.replace("_", "-")) == ["LABS-DEMO-2026-0001"]
        ),
        "audit_flagged_lock_packages": len(set(flagged) - {NAME.replace("_", "-")}),
    }
