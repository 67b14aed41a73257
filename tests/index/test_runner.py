"""``make labs``: every lab runs, a failing one does not stop the rest, failures are listed."""

from __future__ import annotations

import io
import sys
from pathlib import Path

from rich.console import Console

from labs.common.catalogue import Topic, topic
from labs.index.runner import report, run_labs

# Stand-ins for labs: what each "lab" process does, by topic.
SCRIPTS = {
    "drift": "print('drift ran')",
    "versioning": "import sys; print('a claim fails'); sys.exit(1)",
    "monitoring": "import sys; print('bad params', file=sys.stderr); sys.exit(2)",
    "retraining": "print('retraining ran')",
}


def fake_lab(t: Topic) -> list[str]:
    return [sys.executable, "-c", SCRIPTS[t.id]]


def test_every_lab_runs_past_failures_which_are_listed_with_the_total(project: Path) -> None:
    topics = [topic(t) for t in SCRIPTS]
    buffer = io.StringIO()
    console = Console(file=buffer, width=120, color_system=None)
    runs = run_labs(topics, command=fake_lab, root=project, console=console)
    assert [(r.topic, r.returncode) for r in runs] == [
        ("drift", 0), ("versioning", 1), ("monitoring", 2), ("retraining", 0),
    ]  # fmt: skip
    assert all(r.duration_s >= 0 for r in runs)
    assert (project / "reports" / "monitoring" / "run.log").read_text() == "bad params\n"
    code = report(runs, 3.21, console=console)
    out = buffer.getvalue()
    assert code == 1
    for line in ("✓ drift", "✗ versioning", "a claim fails", "✗ monitoring", "refused"):
        assert line in out, line
    assert "bad params" in out  # the tail of the failing lab's log
    assert "2/4 labs passed, 2 failed (versioning, monitoring) — total 3.2 s" in out


def test_all_passing_exits_zero(project: Path) -> None:
    buffer = io.StringIO()
    console = Console(file=buffer, width=120, color_system=None)
    runs = run_labs([topic("drift")], command=fake_lab, root=project, console=console)
    assert report(runs, 1.0, console=console) == 0
    assert "1/1 labs passed, all passed — total 1.0 s" in buffer.getvalue()
