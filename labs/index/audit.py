"""``make claims-audit``: every lab's counterfactuals, run, and one line per claim.

Each lab audits itself in its own process (``python -m labs.<topic> --audit --json …``, see
:mod:`labs.common.claims_audit`): it runs once as it is on small parameters and once under
each counterfactual, in a throw-away folder and MLflow store. Labs run one after another, for
the reason ``make labs`` gives (two cores, timing claims). The lines are printed as each lab
finishes; the end prints ``N/N claims fail under a counterfactual`` and writes
``reports/audit/claims.json``, which the evidence index reads.
"""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from labs.common.catalogue import Topic
from labs.common.claims_audit import LabAudit, format_audit
from labs.common.paths import project_root
from labs.common.results import git_state

AUDIT_FILE = Path("reports") / "audit" / "claims.json"


def audit_command(topic: Topic, json_path: Path) -> list[str]:
    """How one lab audits itself: its module in this interpreter (the project venv)."""
    return [sys.executable, "-m", f"labs.{topic.id}", "--audit", "--json", str(json_path)]


def run_audit(
    topics: Sequence[Topic],
    root: Path | None = None,
    *,
    command: Callable[[Topic, Path], list[str]] = audit_command,
    console: object | None = None,
) -> int:
    """Audit each lab in turn; print the lines, write ``reports/audit/claims.json``; 0 only if
    every claim of every lab holds as it is and fails under its counterfactuals."""
    from rich.console import Console

    from labs.index.runner import run_labs

    root = root or project_root()
    out = console if isinstance(console, Console) else Console(highlight=False)
    folder = root / AUDIT_FILE.parent
    folder.mkdir(parents=True, exist_ok=True)
    for topic in topics:  # a lab that crashes before writing must not leave an old verdict
        (folder / f"{topic.id}.json").unlink(missing_ok=True)
    started = time.perf_counter()
    runs = run_labs(
        topics,
        command=lambda t: command(t, folder / f"{t.id}.json"),
        root=root,
        console=out,
        log_name=Path("audit") / "{topic}.log",
        describe=lambda run: "audited" if run.ok else f"audit failed (exit {run.returncode})",
    )
    audits, missing = [], []
    for run in runs:
        path = folder / f"{run.topic}.json"
        try:
            audits.append(LabAudit.from_dict(json.loads(path.read_text())))
        except (OSError, ValueError, KeyError):
            missing.append(run)
    out.print()
    out.print(format_audit(audits), markup=False, soft_wrap=True)  # one line per claim
    for run in missing:
        out.print(f"[red]{run.topic}: the audit wrote no result ({run.outcome}); log: {run.log}[/]")
    total_s = round(time.perf_counter() - started, 1)
    write_audit(audits, [r.topic for r in missing], total_s, root / AUDIT_FILE)
    ok = not missing and all(a.ok for a in audits)
    out.print(f"claims audit: {'passed' if ok else '[red]FAILED[/]'} in {total_s:.1f} s")
    return 0 if ok else 1


def write_audit(audits: list[LabAudit], missing: list[str], total_s: float, path: Path) -> None:
    """The whole audit as one file: each lab's verdicts, when, at which commit."""
    commit, dirty = git_state()
    data = {
        "generated_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "git_commit": commit,
        "git_dirty": dirty,
        "duration_s": total_s,
        "claims": sum(len(a.claims) for a in audits),
        "fail_under_counterfactual": sum(c.ok for a in audits for c in a.claims),
        "missing": missing,
        "labs": {a.lab: a.to_dict() for a in audits},
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(data, indent=2) + "\n")
    tmp.replace(path)


def read_audit(root: Path | None = None) -> dict[str, Any] | None:
    """The last ``make claims-audit`` result, or None if there is none (or it is unreadable)."""
    path = (root or project_root()) / AUDIT_FILE
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) and "labs" in data else None
