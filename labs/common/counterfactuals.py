"""Counterfactuals: the broken implementations and wrong settings each lab's claims must catch.

A claim is evidence only if it could have failed. Every lab names, in its
``labs/<topic>/counterfactuals.py``, a few **counterfactuals**: one component of the lab
replaced by a plausible broken version (``drift: no multiple-testing correction``) or one
setting made wrong (``retraining: no promotion margin``). A counterfactual is handed to the
lab's own ``run()`` — as parameter overrides and as keyword arguments that replace a component
— so it goes through the lab's real measurement path; nothing feeds made-up numbers to a claim.

:func:`audit_lab` runs the lab once as it is and once under each counterfactual, on small
parameters, and checks that every claim holds without a counterfactual and fails (✗) under
each counterfactual that says it breaks it. A claim no counterfactual breaks is reported as
``CANNOT FAIL``. ``make claims-audit`` runs it for every lab; katas and drills reuse the same
counterfactuals as the faults a learner repairs or diagnoses.
"""

from __future__ import annotations

import dataclasses
import re
import time
import traceback
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from labs.common.errors import Refusal
from labs.common.results import LabResult

_NAME = re.compile(r"^[a-z][a-z0-9-]*$")


class UnknownCounterfactual(Refusal):
    """A counterfactual name the lab does not have (the message lists the ones it has)."""


@dataclass(frozen=True)
class Counterfactual:
    """One broken implementation or wrong setting, and the claims it must turn ✗.

    ``params`` are overrides of the lab's parameters (a wrong setting); ``components`` are
    keyword arguments of the lab's ``run()`` that replace one of its parts with a broken one
    (module-level functions or classes, so they can cross into a sidecar process).
    ``story`` says what is wrong in plain words — the fault a kata hands to a learner.
    """

    name: str
    title: str
    breaks: tuple[str, ...]
    story: str
    params: Mapping[str, Any] = field(default_factory=dict)
    components: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        object.__setattr__(self, "breaks", tuple(self.breaks))
        if not _NAME.match(self.name):
            raise ValueError(f"counterfactual name {self.name!r}: lower-case words joined by '-'")
        if not self.breaks:
            raise ValueError(f"counterfactual {self.name!r} breaks no claim")
        if not (self.params or self.components):
            raise ValueError(f"counterfactual {self.name!r} changes no parameter and no component")


@dataclass(frozen=True)
class LabCounterfactuals:
    """A lab's counterfactuals, and how to run the lab with one of them.

    ``audit_params`` are the small, fast parameter overrides the audit runs on (applied to the
    lab's ``params.yaml`` section); the audit's first run shows every claim holding on them.
    ``claim_params`` are the longer measurements only some claims need to be decided (claim
    id → overrides on top of ``audit_params``): a run gets them only when it decides that
    claim — the run as it is decides every claim, a counterfactual's run the ones it names.
    """

    topic: str
    section: str
    params_cls: type
    run: Callable[..., LabResult]
    counterfactuals: tuple[Counterfactual, ...]
    audit_params: Mapping[str, Any] = field(default_factory=dict)
    claim_params: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        object.__setattr__(self, "counterfactuals", tuple(self.counterfactuals))
        names = [c.name for c in self.counterfactuals]
        if len(set(names)) != len(names):
            raise ValueError(f"lab {self.topic}: counterfactual names repeat: {names}")
        fields = {f.name for f in dataclasses.fields(self.params_cls)}
        for where, keys in [
            ("audit_params", self.audit_params),
            *((f"counterfactual {c.name}", c.params) for c in self.counterfactuals),
            *((f"claim_params[{claim}]", p) for claim, p in self.claim_params.items()),
        ]:
            unknown = sorted(set(keys) - fields)
            if unknown:
                raise ValueError(f"lab {self.topic}: {where} sets unknown parameters {unknown}")
        chosen: dict[str, Any] = {}
        for claim, overrides in self.claim_params.items():
            for key, value in overrides.items():
                if chosen.setdefault(key, value) != value:
                    raise ValueError(
                        f"lab {self.topic}: claim_params set {key} to {chosen[key]!r} and, for "
                        f"{claim}, {value!r}: one value per parameter"
                    )

    def get(self, name: str) -> Counterfactual:
        for c in self.counterfactuals:
            if c.name == name:
                return c
        names = ", ".join(c.name for c in self.counterfactuals)
        raise UnknownCounterfactual(
            f"lab {self.topic} has no counterfactual {name!r}; it has: {names}"
        )

    def small(self, params: Any) -> Any:
        """``params`` with the audit's small settings."""
        return dataclasses.replace(params, **self.audit_params)

    def deciding(self, params: Any, claims: tuple[str, ...] | None) -> Any:
        """``params`` with the longer measurements of the ``claims`` a run decides (None: all)."""
        overrides: dict[str, Any] = {}
        for claim, settings in self.claim_params.items():
            if claims is None or claim in claims:
                overrides |= settings
        return dataclasses.replace(params, **overrides) if overrides else params

    def run_with(
        self,
        counterfactual: Counterfactual | None,
        params: Any,
        out_dir: Path,
        echo: Callable[[str], None] = lambda _: None,
    ) -> LabResult:
        """Run the lab on ``params`` — as it is, or with ``counterfactual`` substituted."""
        if counterfactual is None:
            return self.run(params, out_dir, echo=echo)
        broken = dataclasses.replace(params, **counterfactual.params)
        return self.run(broken, out_dir, echo=echo, **counterfactual.components)


# --- the audit ----------------------------------------------------------------------------

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
