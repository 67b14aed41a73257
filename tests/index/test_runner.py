"""``make labs``: every lab runs, a failing one does not stop the rest, failures are listed."""

from __future__ import annotations

import io
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
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


def _timed_lab(record: Path, seconds: float) -> Callable[[Topic], list[str]]:
    """A stand-in lab that records when it ran (``<topic> <start> <end>``) in ``record``."""

    def command(t: Topic) -> list[str]:
        code = (
            f"import time; s = time.time(); time.sleep({seconds!r}); "
            f"open({str(record)!r}, 'a').write(f'{t.id} {{s}} {{time.time()}}\\n')"
        )
        return [sys.executable, "-c", code]

    return command


def _spans(record: Path) -> dict[str, tuple[float, float]]:
    rows = [line.split() for line in record.read_text().splitlines()]
    return {name: (float(start), float(end)) for name, start, end in rows}


def _overlap(a: tuple[float, float], b: tuple[float, float]) -> bool:
    return a[0] < b[1] and b[0] < a[1]


def test_two_lanes_run_labs_side_by_side_and_a_whole_machine_lab_alone(project: Path) -> None:
    ids = ["drift", "scaling", "cicd", "features", "security"]
    assert [topic(t).whole_machine for t in ids] == [False, True, False, False, False]
    record = project / "spans.txt"
    console = Console(file=io.StringIO(), width=120, color_system=None)
    runs = run_labs(
        [topic(t) for t in ids], command=_timed_lab(record, 0.8), root=project,
        console=console, lanes=2,
    )  # fmt: skip
    assert [r.topic for r in runs] == ids and all(r.ok for r in runs)  # in the order asked
    spans = _spans(record)
    shared = [t for t in ids if t != "scaling"]
    overlapping = [(a, b) for a in shared for b in shared if a < b and _overlap(spans[a], spans[b])]
    assert len(overlapping) >= 2  # four labs on two lanes: two pairs at least ran together
    assert not any(_overlap(spans["scaling"], spans[t]) for t in shared)  # scaling alone
    # one lane: one after another, whole machine or not
    record.unlink()
    run_labs([topic(t) for t in ids[:3]], command=_timed_lab(record, 0.3), root=project,
             console=console)  # fmt: skip
    spans = _spans(record)
    assert not any(_overlap(spans[a], spans[b]) for a in spans for b in spans if a < b)


def test_a_lab_interrupted_in_one_lane_stops_the_other_and_skips_the_rest(project: Path) -> None:
    record = project / "spans.txt"
    started = project / "started.txt"

    def command(t: Topic) -> list[str]:
        if t.id == "drift":  # interrupted from outside: it exits 130 after a moment
            return [sys.executable, "-c", "import sys, time; time.sleep(0.5); sys.exit(130)"]
        code = (  # a long lab that, on Ctrl-C, records that it was stopped
            "import sys, time, pathlib\n"
            f"open({str(started)!r}, 'a').write('{t.id}\\n')\n"
            "try:\n    time.sleep(30)\n"
            f"except KeyboardInterrupt:\n    open({str(record)!r}, 'a').write('{t.id} stopped\\n')"
            "\n    sys.exit(130)\n"
        )
        return [sys.executable, "-c", code]

    console = Console(file=io.StringIO(), width=120, color_system=None)
    with pytest.raises(KeyboardInterrupt):
        run_labs([topic(t) for t in ["drift", "cicd", "features", "security"]],
                 command=command, root=project, console=console, lanes=2)  # fmt: skip
    assert started.read_text().split() == ["cicd"]  # features and security never started
    assert record.read_text().split() == ["cicd", "stopped"]  # it got the Ctrl-C, not a kill
