"""Is a lab's evidence still about the code and data in this checkout?

A summary records the commit it ran at (and whether the tree was dirty) and when it ran. It is
*stale* when the files its numbers came from changed since: the lab's own package, the shared
core, the parameters, the data pipeline and the lock file (``git diff`` from the recorded
commit to the working tree), or when the data or the baseline model on disk were rebuilt after
the run (their modification time).
"""

from __future__ import annotations

import subprocess
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from labs.common.results import Summary

# Where a lab's numbers come from, besides its own package labs/<topic>/.
SHARED_INPUTS = (
    "labs/common",
    "params.yaml",
    "dvc.yaml",
    "dvc.lock",
    "requirements.lock",
)
# Built by `dvc repro`, not tracked by git: rebuilt after the run → the run is stale.
DATA_DIRS = ("data/raw", "data/prepared", "models")
SHOWN_FILES = 4


@dataclass(frozen=True)
class GitCheckout:
    """Read-only questions to the git checkout at ``root`` (all answers ``None`` outside one)."""

    root: Path

    def _git(self, *args: str) -> subprocess.CompletedProcess[str] | None:
        try:
            return subprocess.run(
                ["git", "-C", str(self.root), *args],
                capture_output=True,
                text=True,
                timeout=20,
            )
        except (OSError, subprocess.SubprocessError):
            return None

    def head(self) -> str | None:
        done = self._git("rev-parse", "HEAD")
        return done.stdout.strip() if done and done.returncode == 0 else None

    def has_commit(self, commit: str) -> bool:
        done = self._git("cat-file", "-e", f"{commit}^{{commit}}")
        return bool(done and done.returncode == 0)

    def changed_since(self, commit: str, paths: list[str]) -> list[str] | None:
        """Tracked files under ``paths`` that differ between ``commit`` and the working tree."""
        done = self._git("diff", "--name-only", commit, "--", *paths)
        if done is None or done.returncode != 0:
            return None
        return [line for line in done.stdout.splitlines() if line]


def stale_reasons(summary: Summary, checkout: GitCheckout) -> list[str]:
    """Why ``summary`` no longer describes this checkout; empty when it is fresh."""
    reasons: list[str] = []
    if summary.git_dirty:
        reasons.append("ran on uncommitted changes (git_dirty)")
    commit = summary.git_commit
    if commit is None:
        reasons.append("no git commit recorded")
    elif not checkout.has_commit(commit):
        reasons.append(f"ran at commit {commit[:10]}, which this checkout does not have")
    else:
        paths = [f"labs/{summary.lab}", *SHARED_INPUTS]
        changed = checkout.changed_since(commit, paths)
        if changed:
            shown = ", ".join(changed[:SHOWN_FILES])
            more = f" and {len(changed) - SHOWN_FILES} more" if len(changed) > SHOWN_FILES else ""
            reasons.append(f"code or data changed since {commit[:10]}: {shown}{more}")
    rebuilt = _rebuilt_after(checkout.root, summary.generated_at)
    if rebuilt:
        reasons.append(f"data rebuilt after the run: {rebuilt}")
    return reasons


def _rebuilt_after(root: Path, when: datetime) -> str | None:
    """The first data file (or baseline model) modified after ``when``, if any."""
    ran_at = when if when.tzinfo else when.replace(tzinfo=UTC)
    for folder in DATA_DIRS:
        base = root / folder
        if not base.is_dir():
            continue
        for path in sorted(base.rglob("*")):
            if path.is_file() and not path.name.startswith("."):
                modified = datetime.fromtimestamp(path.stat().st_mtime, UTC)
                if modified > ran_at:
                    return str(path.relative_to(root))
    return None
