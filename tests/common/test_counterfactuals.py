"""Counterfactuals and the claims audit on a small lab whose claims are measured by running a
real (tiny) detector: a claim holds as the lab is, fails under the counterfactual that names
it, and the audit calls out a claim that cannot fail, has no counterfactual, or fails anyway."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

from labs.common.claims_audit import (
    CANNOT_FAIL,
    FAILS,
    FAILS_WITHOUT,
    NO_COUNTERFACTUAL,
    LabAudit,
    audit_lab,
    format_audit,
)
from labs.common.counterfactuals import Counterfactual, LabCounterfactuals, UnknownCounterfactual
from labs.common.entry import lab_main
from labs.common.results import Claim, LabResult, read_summary


@dataclass(frozen=True)
class ToyParams:
    rows: int = 2000
    threshold: float = 3.0
    shift: float = 1.0


def mean_detector(reference: np.ndarray, current: np.ndarray, threshold: float) -> bool:
    """Flags a shift of the mean by more than ``threshold`` standard errors."""
    se = np.sqrt(reference.var() / len(reference) + current.var() / len(current))
    return abs(current.mean() - reference.mean()) > threshold * se


def detector_that_never_fires(reference: np.ndarray, current: np.ndarray, threshold: float) -> bool:
    return False


def toy_run(p: ToyParams, out_dir: Path, echo=print, *, detector=mean_detector) -> LabResult:
    rng = np.random.default_rng(0)
    reference = rng.normal(size=p.rows)
    same = [detector(reference, rng.normal(size=p.rows), p.threshold) for _ in range(50)]
    shifted = detector(reference, rng.normal(p.shift, size=p.rows), p.threshold)
    return LabResult(
        lab="toy",
        question="Can a toy detector fail?",
        claims=[
            Claim(
                "catches_shift", "A shift of the mean is flagged.", shifted, {"flagged": shifted}
            ),
            Claim(
                "few_false_alarms",
                "At most 2 in 50 same-distribution batches are flagged.",
                sum(same) <= 2,
                {"false_alarms": sum(same)},
            ),  # fmt: skip
            Claim("always_true", "Holds whatever happens.", True, {"rows": p.rows}),
        ],
    )


NEVER = Counterfactual(
    "detector-never-fires", "the detector never fires", ("catches_shift",),
    "the alert rule was commented out", components={"detector": detector_that_never_fires},
)  # fmt: skip
LOOSE = Counterfactual(
    "threshold-too-low", "threshold of 0.1 standard errors", ("few_false_alarms",),
    "every wiggle pages on-call", params={"threshold": 0.1},
)  # fmt: skip


def spec(*cfs: Counterfactual, **audit_params) -> LabCounterfactuals:
    return LabCounterfactuals("toy", "toy", ToyParams, toy_run, cfs, audit_params)


def verdicts(audit: LabAudit) -> dict[str, str]:
    return {c.claim: c.verdict for c in audit.claims}


def test_audit_shows_each_claim_failing_and_calls_out_the_one_that_cannot(tmp_path: Path) -> None:
    always = Counterfactual("no-rows", "tiny batches", ("always_true",), "...", params={"rows": 30})
    audit = audit_lab(spec(NEVER, LOOSE, always), ToyParams(), tmp_path)
    assert audit.runs["(as is)"] == {
        "catches_shift": True,
        "few_false_alarms": True,
        "always_true": True,
    }
    assert audit.runs["detector-never-fires"]["catches_shift"] is False
    assert audit.runs["threshold-too-low"]["few_false_alarms"] is False
    assert verdicts(audit) == {
        "catches_shift": FAILS, "few_false_alarms": FAILS, "always_true": CANNOT_FAIL,
    }  # fmt: skip
    assert not audit.ok
    text = format_audit([audit])
    assert "toy:always_true" in text and "CANNOT FAIL (held under no-rows)" in text
    assert text.splitlines()[-1] == "2/3 claims fail under a counterfactual"


def test_a_claim_without_counterfactual_and_one_failing_as_is_are_not_evidence(
    tmp_path: Path,
) -> None:
    audit = audit_lab(spec(NEVER), ToyParams(shift=0.0), tmp_path)
    assert verdicts(audit) == {
        "catches_shift": FAILS_WITHOUT,  # no shift: it fails as is, so its ✗ proves nothing
        "few_false_alarms": NO_COUNTERFACTUAL,
        "always_true": NO_COUNTERFACTUAL,
    }
    assert not audit.ok


def test_a_crashing_counterfactual_is_an_error_not_a_failure(tmp_path: Path) -> None:
    def boom(*args):
        raise RuntimeError("broken beyond measuring")

    crash = Counterfactual(
        "crash", "crash", ("catches_shift",), "...", components={"detector": boom}
    )
    audit = audit_lab(spec(crash, LOOSE), ToyParams(), tmp_path)
    assert audit.errors == ["crash: crashed: RuntimeError: broken beyond measuring"]
    assert verdicts(audit)["catches_shift"] == CANNOT_FAIL and not audit.ok
    assert LabAudit.from_dict(json.loads(json.dumps(audit.to_dict()))).to_dict() == audit.to_dict()


def flaky(misses: int, *, crash: bool = False):
    """A lab that goes the unexpected way on its first ``misses`` runs as it is — the shape of a
    timing claim on a loaded machine (or, with ``crash``, of a port taken by another process)."""
    calls = {"runs": 0}

    def run(p: ToyParams, out_dir: Path, echo=print, *, detector=mean_detector) -> LabResult:
        as_is = detector is mean_detector and p == ToyParams()
        calls["runs"] += as_is
        if as_is and calls["runs"] <= misses:
            if crash:
                raise OSError(98, "Address already in use")
            return toy_run(p, out_dir, echo, detector=detector_that_never_fires)
        return toy_run(p, out_dir, echo, detector=detector)

    return run


def test_a_run_that_misses_once_is_run_again_and_the_audit_says_so(tmp_path: Path) -> None:
    once = LabCounterfactuals("toy", "toy", ToyParams, flaky(1), (NEVER, LOOSE))
    audit = audit_lab(once, ToyParams(), tmp_path)
    assert verdicts(audit)["catches_shift"] == FAILS  # always_true has none: NO_COUNTERFACTUAL
    shift = next(c for c in audit.claims if c.claim == "catches_shift")
    assert shift.rerun == ("(as is)",)
    assert audit.runs["(as is)"]["catches_shift"] is False
    assert audit.runs["(as is) (second run)"]["catches_shift"] is True
    assert set(audit.runs) == {"(as is)", "(as is) (second run)", NEVER.name, LOOSE.name}
    text = format_audit([audit])
    assert "on a second run of (as is)" in text
    assert "(as is): catches_shift failed as is on the first run: flagged=False" in text
    assert text.splitlines()[-1] == "2/3 claims fail under a counterfactual"

    twice = LabCounterfactuals("toy", "toy", ToyParams, flaky(2), (NEVER, LOOSE))
    audit = audit_lab(twice, ToyParams(), tmp_path / "twice")
    assert verdicts(audit)["catches_shift"] == FAILS_WITHOUT  # missing twice is a finding
    assert "(as is) (second run): catches_shift failed as is: flagged=False" in audit.notes


def test_a_crash_on_the_first_run_only_is_a_note_not_an_error(tmp_path: Path) -> None:
    port_race = LabCounterfactuals("toy", "toy", ToyParams, flaky(1, crash=True), (NEVER, LOOSE))
    audit = audit_lab(port_race, ToyParams(), tmp_path)
    assert audit.errors == []
    assert verdicts(audit)["catches_shift"] == verdicts(audit)["few_false_alarms"] == FAILS
    assert audit.notes == [
        "(as is): crashed on the first run: OSError: [Errno 98] Address already in use"
    ]
    assert {c.rerun for c in audit.claims} == {("(as is)",)}


def test_a_claim_that_failed_as_expected_keeps_its_first_verdict(tmp_path: Path) -> None:
    """A counterfactual run again for one claim does not get a second chance to hide another."""
    calls = {"loose": 0}

    def run(p: ToyParams, out_dir: Path, echo=print, *, detector=mean_detector) -> LabResult:
        result = toy_run(p, out_dir, echo, detector=detector)
        if p.threshold < 1:
            calls["loose"] += 1
            first = calls["loose"] == 1
            result.claims[1] = Claim("few_false_alarms", "...", not first, {"first": first})
            result.claims[0] = Claim("catches_shift", "...", first, {"first": first})
        return result

    both = Counterfactual(
        "loose-both", "threshold 0.1", ("few_false_alarms", "catches_shift"), "...",
        params={"threshold": 0.1},
    )  # fmt: skip
    audit = audit_lab(
        LabCounterfactuals("toy", "toy", ToyParams, run, (both,)), ToyParams(), tmp_path
    )
    by_claim = {c.claim: c for c in audit.claims}
    assert by_claim["few_false_alarms"].verdict == FAILS and not by_claim["few_false_alarms"].rerun
    assert by_claim["catches_shift"].verdict == FAILS
    assert by_claim["catches_shift"].rerun == ("loose-both",)


def test_counterfactuals_are_checked_when_declared() -> None:
    with pytest.raises(ValueError, match="unknown parameters"):
        spec(Counterfactual("x", "x", ("a",), "...", params={"tresh": 1}))
    with pytest.raises(ValueError, match="breaks no claim"):
        Counterfactual("x", "x", (), "...", params={"rows": 1})
    with pytest.raises(ValueError, match="changes no parameter"):
        Counterfactual("x", "x", ("a",), "...")
    with pytest.raises(UnknownCounterfactual, match="it has: detector-never-fires"):
        spec(NEVER).get("nope")
    with pytest.raises(ValueError, match=r"claim_params\[a\] sets unknown parameters \['rws'\]"):
        LabCounterfactuals(
            "toy", "toy", ToyParams, toy_run, (NEVER,), claim_params={"a": {"rws": 1}}
        )
    with pytest.raises(ValueError, match="set rows to 100 and, for b, 200: one value"):
        LabCounterfactuals("toy", "toy", ToyParams, toy_run, (NEVER,),
                           claim_params={"a": {"rows": 100}, "b": {"rows": 200}})  # fmt: skip


def test_a_run_gets_the_longer_measurements_of_the_claims_it_decides_only(tmp_path: Path) -> None:
    rows: dict[str, int] = {}

    def recording(p: ToyParams, out_dir: Path, echo=print, **components) -> LabResult:
        rows[out_dir.name] = p.rows
        return toy_run(p, out_dir, echo, **components)

    s = LabCounterfactuals(
        "toy", "toy", ToyParams, recording, (NEVER, LOOSE), {"rows": 300},
        claim_params={"few_false_alarms": {"rows": 2000}},
    )  # fmt: skip
    audit = audit_lab(s, s.small(ToyParams()), tmp_path)
    # as is: every claim decided, so the long measurement; the counterfactual that breaks
    # few_false_alarms gets it too; the one that breaks only catches_shift stays short
    assert rows == {"as-is": 2000, "detector-never-fires": 300, "threshold-too-low": 2000}
    assert not audit.errors and not audit.notes
    assert verdicts(audit)["catches_shift"] == verdicts(audit)["few_false_alarms"] == FAILS
    unknown = LabCounterfactuals("toy", "toy", ToyParams, toy_run, (NEVER, LOOSE),
                                 claim_params={"no_such_claim": {"rows": 2000}})  # fmt: skip
    assert audit_lab(unknown, ToyParams(), tmp_path / "u").errors == [
        "claim_params name claims the lab does not make: ['no_such_claim']"
    ]


@pytest.fixture
def toy_project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    (tmp_path / "params.yaml").write_text("toy:\n  rows: 2000\n  threshold: 3.0\n  shift: 1.0\n")
    monkeypatch.setenv("LABS_ROOT", str(tmp_path))
    from labs.common import catalogue

    monkeypatch.setattr(
        catalogue, "topic", lambda _: type("T", (), {"question": "Can a toy detector fail?"})
    )
    return tmp_path


def test_the_lab_door_runs_one_counterfactual_and_the_audit(toy_project: Path, capsys) -> None:
    s = spec(NEVER, LOOSE, rows=500)
    argv = ["--counterfactual", "detector-never-fires"]
    assert lab_main("toy", "toy", ToyParams, toy_run, s, argv=argv) == 0
    out = capsys.readouterr().out
    assert "✗ catches_shift" in out and "Caught: catches_shift turned ✗" in out
    broken = toy_project / "reports" / "toy"
    assert not (broken / "summary.json").exists()  # the real summary is not overwritten
    target = toy_project / "audit.json"
    assert (
        lab_main("toy", "toy", ToyParams, toy_run, s, argv=["--audit", "--json", str(target)]) == 1
    )
    audit = LabAudit.from_dict(json.loads(target.read_text()))
    assert verdicts(audit)["always_true"] == NO_COUNTERFACTUAL
    assert audit.runs["(as is)"]  # ran on the audit's small parameters
    assert lab_main("toy", "toy", ToyParams, toy_run, s, argv=["--counterfactual", "nope"]) == 2
    assert lab_main("toy", "toy", ToyParams, toy_run, None, argv=["--audit"]) == 2
    assert lab_main("toy", "toy", ToyParams, toy_run, s, argv=[]) == 0
    assert read_summary(broken / "summary.json").claim("catches_shift").passed
