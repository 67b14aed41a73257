"""The claims audit: a lab run as it is and under each of its counterfactuals, a verdict per
claim, and the lines ``make claims-audit`` prints.

A claim is evidence when it holds as the lab is and turns ✗ under every counterfactual that
names it (:mod:`labs.common.counterfactuals`). :func:`audit_lab` runs one lab that way and
returns a :class:`LabAudit` (one :class:`ClaimAudit` per claim, the runs, what went the
unexpected way); :func:`format_audit` prints them.
"""

from __future__ import annotations

import time
import traceback
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from labs.common.counterfactuals import Counterfactual, LabCounterfactuals

FAILS, CANNOT_FAIL, NO_COUNTERFACTUAL, FAILS_WITHOUT = (
    "fails", "cannot-fail", "no-counterfactual", "fails-without",
)  # fmt: skip
VERDICT_TEXT = {
    FAILS: "✗ as expected",
    CANNOT_FAIL: "✓ — CANNOT FAIL",
    NO_COUNTERFACTUAL: "— no counterfactual: CANNOT BE SHOWN TO FAIL",
    FAILS_WITHOUT: "✗ already without a counterfactual (on the audit's parameters)",
}


@dataclass(frozen=True)
class ClaimAudit:
    """One claim: does it hold as the lab is, and fail under each counterfactual naming it?

    ``rerun`` names the runs the audit repeated once for this claim because the first one went
    the unexpected way (a timing claim on a loaded machine, a port taken): the verdict is then
    the second run's, and the audit prints that it needed one.
    """

    lab: str
    claim: str
    counterfactuals: tuple[str, ...]
    holds_without: bool
    survived: tuple[str, ...]  # declared counterfactuals under which it still held (or crashed)
    rerun: tuple[str, ...] = ()

    @property
    def verdict(self) -> str:
        if not self.holds_without:
            return FAILS_WITHOUT
        if not self.counterfactuals:
            return NO_COUNTERFACTUAL
        return CANNOT_FAIL if self.survived else FAILS

    @property
    def ok(self) -> bool:
        return self.verdict == FAILS

    def line(self, width: int = 48) -> str:
        names = ", ".join(self.counterfactuals) or "—"
        text = VERDICT_TEXT[self.verdict]
        if self.verdict == CANNOT_FAIL:
            text += f" (held under {', '.join(self.survived)})"
        if self.rerun:
            text += f" (on a second run of {', '.join(self.rerun)})"
        return f"{self.lab + ':' + self.claim:<{width}} {names:<40} {text}"

    def to_dict(self) -> dict[str, Any]:
        return {
            "lab": self.lab,
            "claim": self.claim,
            "counterfactuals": list(self.counterfactuals),
            "holds_without": self.holds_without,
            "survived": list(self.survived),
            "rerun": list(self.rerun),
            "verdict": self.verdict,
        }


@dataclass
class LabAudit:
    """The audit of one lab: a verdict per claim, the runs behind them, and what went wrong.

    ``notes`` say, with the measured numbers, what went the unexpected way on a first run
    (and so was run again) and what still did on the second — the lines to read first.
    """

    lab: str
    claims: list[ClaimAudit]
    runs: dict[str, dict[str, bool]]  # "(as is)" or counterfactual name → claim id → passed
    errors: list[str]
    duration_s: float
    counterfactuals: dict[str, dict[str, Any]] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return bool(self.claims) and not self.errors and all(c.ok for c in self.claims)

    def to_dict(self) -> dict[str, Any]:
        return {
            "lab": self.lab,
            "ok": self.ok,
            "claims": [c.to_dict() for c in self.claims],
            "runs": self.runs,
            "errors": self.errors,
            "notes": self.notes,
            "duration_s": self.duration_s,
            "counterfactuals": self.counterfactuals,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> LabAudit:
        claims = [
            ClaimAudit(
                lab=c["lab"],
                claim=c["claim"],
                counterfactuals=tuple(c["counterfactuals"]),
                holds_without=bool(c["holds_without"]),
                survived=tuple(c["survived"]),
                rerun=tuple(c.get("rerun", ())),
            )
            for c in data["claims"]
        ]
        return cls(
            lab=data["lab"],
            claims=claims,
            runs={k: dict(v) for k, v in data["runs"].items()},
            errors=list(data["errors"]),
            duration_s=float(data["duration_s"]),
            counterfactuals=dict(data.get("counterfactuals", {})),
            notes=list(data.get("notes", [])),
        )


AS_IS = "(as is)"
SECOND = " (second run)"


def numbers_line(measured: Mapping[str, Any], limit: int = 6) -> str:
    """A claim's measured numbers, short enough for one line of the audit."""
    items = []
    for key, value in list(measured.items())[:limit]:
        if isinstance(value, float):
            value = f"{value:.4g}"
        elif isinstance(value, (list, tuple, dict)):
            text = str(value)
            value = text if len(text) <= 40 else text[:37] + "..."
        items.append(f"{key}={value}")
    return ", ".join(items)


def audit_lab(
    spec: LabCounterfactuals,
    params: Any,
    work_dir: Path,
    echo: Callable[[str], None] = lambda _: None,
) -> LabAudit:
    """Run the lab on ``params`` (already small) as it is, then under each counterfactual, each
    in its own folder under ``work_dir``; return a verdict per claim. Each run gets the longer
    measurements (``spec.claim_params``) of the claims it decides, and only those.

    A run that raises is recorded as an error (its traceback's last line) and its declared
    claims count as not broken: a crash is not evidence that a claim can fail. A run that went
    the unexpected way for some claim — a claim failing as it is, one holding under a
    counterfactual that names it, a crash — is repeated once, and the second run decides; the
    first run's numbers stay in ``notes``. Timing claims measured on a shared two-core machine
    can miss once; a claim that misses twice is a finding.
    """
    started = time.perf_counter()
    runs: dict[str, dict[str, bool]] = {}
    measured: dict[str, dict[str, Mapping[str, Any]]] = {}
    crashed: dict[str, str] = {}
    plan: list[Counterfactual | None] = [None, *spec.counterfactuals]

    def run(cf: Counterfactual | None, label: str, out: Path, step: str) -> None:
        title = AS_IS if cf is None else cf.title
        echo(f"{step}: {title}{SECOND if label.endswith(SECOND) else ''}")
        decides = None if cf is None else cf.breaks
        try:
            result = spec.run_with(cf, spec.deciding(params, decides), out, echo=lambda _: None)
        except KeyboardInterrupt:
            raise
        except BaseException as err:  # noqa: BLE001 — any crash is recorded, the audit goes on
            crashed[label] = traceback.format_exception_only(type(err), err)[-1].strip()
            echo(f"  crashed: {crashed[label]}")
            return
        runs[label] = {c.id: bool(c.passed) for c in result.claims}
        measured[label] = {c.id: dict(c.measured) for c in result.claims}
        echo(f"  {sum(runs[label].values())}/{len(result.claims)} claims hold")

    def label_of(cf: Counterfactual | None) -> str:
        return AS_IS if cf is None else cf.name

    def folder_of(cf: Counterfactual | None) -> Path:
        return work_dir / ("as-is" if cf is None else cf.name)

    def missed(label: str, claim: str) -> bool:
        """Whether the (first) run ``label`` went the unexpected way for ``claim``: it crashed,
        the claim failed as is, or it held under a counterfactual naming it."""
        if label not in runs:
            return True
        held = runs[label].get(claim)
        return not held if label == AS_IS else held is not False

    for i, cf in enumerate(plan):
        run(cf, label_of(cf), folder_of(cf), f"run {i + 1}/{len(plan)}")

    def spoken_for(cf: Counterfactual | None) -> list[str]:
        """The claims a run decides: all of them as is, the ones it names under a counterfactual."""
        if cf is not None:
            return list(cf.breaks)
        return list(runs.get(AS_IS, {})) or ["(every claim)"]  # a crash as is: all of them

    notes: list[str] = []
    again = [cf for cf in plan if any(missed(label_of(cf), c) for c in spoken_for(cf))]
    for i, cf in enumerate(again):
        label = label_of(cf)
        if label in crashed:
            notes.append(f"{label}: crashed on the first run: {crashed[label]}")
        else:
            what = "failed as is" if cf is None else "held under it"
            for c in spoken_for(cf):
                if missed(label, c) and c in measured[label]:
                    nums = numbers_line(measured[label][c])
                    notes.append(f"{label}: {c} {what} on the first run: {nums}")
        out = folder_of(cf).with_name(folder_of(cf).name + "-second-run")
        run(cf, label + SECOND, out, f"second run {i + 1}/{len(again)}")

    def second(label: str) -> bool:
        return label + SECOND in runs or label + SECOND in crashed

    def deciding(label: str, claim: str) -> str:
        """The run that decides ``claim``: the second one where the first went unexpectedly."""
        return label + SECOND if second(label) and missed(label, claim) else label

    errors = [
        f"{label}: crashed: {crashed[label]}"
        for label in map(label_of, plan)
        if label in crashed and (not second(label) or label + SECOND in crashed)
    ]
    as_is = runs.get(AS_IS + SECOND) or runs.get(AS_IS)
    if as_is is None:
        ids = sorted({c for r in runs.values() for c in r})
    else:
        ids = list(as_is)
    for cf in spec.counterfactuals:
        unknown = sorted(set(cf.breaks) - set(ids))
        if ids and unknown:
            errors.append(f"{cf.name}: names claims the lab does not make: {unknown}")
    unknown = sorted(set(spec.claim_params) - set(ids))
    if ids and unknown:
        errors.append(f"claim_params name claims the lab does not make: {unknown}")
    claims = []
    for claim in ids:
        declared = tuple(c.name for c in spec.counterfactuals if claim in c.breaks)
        by = {label: deciding(label, claim) for label in (AS_IS, *declared)}
        survived = tuple(n for n in declared if runs.get(by[n], {}).get(claim, True))
        holds = bool(runs.get(by[AS_IS], {}).get(claim))
        rerun = tuple(label for label, run_label in by.items() if run_label != label)
        claims.append(ClaimAudit(spec.topic, claim, declared, holds, survived, rerun))
        if not holds and claim in measured.get(by[AS_IS], {}):
            nums = numbers_line(measured[by[AS_IS]][claim])
            notes.append(f"{by[AS_IS]}: {claim} failed as is: {nums}")
        for n in survived:
            if claim in measured.get(by[n], {}):
                notes.append(f"{by[n]}: {claim} held: {numbers_line(measured[by[n]][claim])}")
    return LabAudit(
        lab=spec.topic,
        claims=claims,
        runs=runs,
        errors=errors,
        duration_s=round(time.perf_counter() - started, 1),
        counterfactuals={
            c.name: {"title": c.title, "story": c.story, "breaks": list(c.breaks)}
            for c in spec.counterfactuals
        },
        notes=notes,
    )


def format_audit(audits: list[LabAudit]) -> str:
    """One line per claim, the errors, and the total line."""
    lines = []
    width = max((len(c.lab) + len(c.claim) + 1 for a in audits for c in a.claims), default=20)
    for audit in audits:
        lines += [c.line(width + 2) for c in audit.claims]
        lines += [f"{audit.lab}: error: {e}" for e in audit.errors]
    notes = [f"  {a.lab}: {n}" for a in audits for n in a.notes]
    if notes:  # last, so that the tail of a CI log shows what went the unexpected way
        lines += ["", "What went the unexpected way, with the numbers measured:"]
        lines += notes
    total = sum(len(a.claims) for a in audits)
    failing = sum(c.ok for a in audits for c in a.claims)
    lines.append(f"{failing}/{total} claims fail under a counterfactual")
    return "\n".join(lines)
