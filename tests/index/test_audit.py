"""``make claims-audit``: each lab's audit result is read back, a claim that cannot fail or a lab
whose audit crashed fails the whole audit, and the total is one line."""

from __future__ import annotations

import io
import json
import sys
from pathlib import Path

from rich.console import Console

from labs.common.catalogue import Topic, topic
from labs.common.claims_audit import ClaimAudit, LabAudit
from labs.index.audit import read_audit, run_audit


def lab_audit(lab: str, survived: dict[str, tuple[str, ...]]) -> dict:
    claims = [ClaimAudit(lab, c, ("broken-part",), True, s) for c, s in survived.items()]
    runs = {"(as is)": dict.fromkeys(survived, True)}
    return LabAudit(lab, claims, runs, [], 1.0).to_dict()


AUDITS = {
    "drift": lab_audit("drift", {"catches_covariate": (), "few_false_alarms": ()}),
    "cicd": lab_audit("cicd", {"gate_blocks": (), "margin": ("broken-part",)}),
}


def fake_audit(t: Topic, json_path: Path) -> list[str]:
    if t.id not in AUDITS:  # crashes before it writes anything
        return [sys.executable, "-c", "import sys; print('Traceback: boom'); sys.exit(1)"]
    code = (
        f"import pathlib; pathlib.Path({str(json_path)!r}).write_text({json.dumps(AUDITS[t.id])!r})"
    )
    return [sys.executable, "-c", code]


def run(project: Path, ids: list[str]) -> tuple[int, str]:
    buffer = io.StringIO()
    console = Console(file=buffer, width=60, color_system=None)
    code = run_audit([topic(t) for t in ids], project, command=fake_audit, console=console)
    return code, buffer.getvalue()


def test_a_claim_that_survives_its_counterfactual_fails_the_audit(project: Path) -> None:
    code, out = run(project, ["drift", "cicd"])
    assert code == 1
    assert "drift:catches_covariate" in out and "✗ as expected" in out
    assert "cicd:margin" in out and "✓ — CANNOT FAIL (held under broken-part)" in out
    # one line per claim, however narrow the terminal
    line = next(x for x in out.splitlines() if x.startswith("drift:catches_covariate"))
    assert line.split() == ["drift:catches_covariate", "broken-part", "✗", "as", "expected"]
    assert "3/4 claims fail under a counterfactual" in out
    saved = read_audit(project)
    assert saved is not None and saved["claims"] == 4 and saved["fail_under_counterfactual"] == 3
    assert saved["labs"]["cicd"]["claims"][1]["verdict"] == "cannot-fail"


def test_every_claim_failing_passes_and_a_crashed_lab_does_not(project: Path) -> None:
    code, out = run(project, ["drift"])
    assert code == 0 and "2/2 claims fail under a counterfactual" in out
    (project / "reports" / "audit" / "monitoring.json").write_text("{}")  # an old result
    code, out = run(project, ["drift", "monitoring"])
    assert code == 1
    assert "monitoring: the audit wrote no result" in out
    assert "Traceback: boom" in (project / "reports" / "audit" / "monitoring.log").read_text()
    assert read_audit(project)["missing"] == ["monitoring"]
