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
    """

    topic: str
    section: str
    params_cls: type
    run: Callable[..., LabResult]
    counterfactuals: tuple[Counterfactual, ...]
    audit_params: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        object.__setattr__(self, "counterfactuals", tuple(self.counterfactuals))
        names = [c.name for c in self.counterfactuals]
        if len(set(names)) != len(names):
            raise ValueError(f"lab {self.topic}: counterfactual names repeat: {names}")
        fields = {f.name for f in dataclasses.fields(self.params_cls)}
        for where, keys in [("audit_params", self.audit_params)] + [
            (f"counterfactual {c.name}", c.params) for c in self.counterfactuals
        ]:
            unknown = sorted(set(keys) - fields)
            if unknown:
                raise ValueError(f"lab {self.topic}: {where} sets unknown parameters {unknown}")

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
    """One claim: does it hold as the lab is, and fail under each counterfactual naming it?"""

    lab: str
    claim: str
    counterfactuals: tuple[str, ...]
    holds_without: bool
    survived: tuple[str, ...]  # declared counterfactuals under which it still held (or crashed)

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
        return f"{self.lab + ':' + self.claim:<{width}} {names:<40} {text}"

    def to_dict(self) -> dict[str, Any]:
        return {
            "lab": self.lab,
            "claim": self.claim,
            "counterfactuals": list(self.counterfactuals),
            "holds_without": self.holds_without,
            "survived": list(self.survived),
            "verdict": self.verdict,
        }


@dataclass
class LabAudit:
    """The audit of one lab: a verdict per claim, the runs behind them, and what went wrong."""

    lab: str
    claims: list[ClaimAudit]
    runs: dict[str, dict[str, bool]]  # "(as is)" or counterfactual name → claim id → passed
    errors: list[str]
    duration_s: float
    counterfactuals: dict[str, dict[str, Any]] = field(default_factory=dict)

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
        )


AS_IS = "(as is)"


def audit_lab(
    spec: LabCounterfactuals,
    params: Any,
    work_dir: Path,
    echo: Callable[[str], None] = lambda _: None,
) -> LabAudit:
    """Run the lab on ``params`` (already small) as it is, then under each counterfactual, each
    in its own folder under ``work_dir``; return a verdict per claim.

    A run that raises is recorded as an error (its traceback's last line) and its declared
    claims count as not broken: a crash is not evidence that a claim can fail.
    """
    started = time.perf_counter()
    runs: dict[str, dict[str, bool]] = {}
    errors: list[str] = []
    plan: list[Counterfactual | None] = [None, *spec.counterfactuals]
    for i, cf in enumerate(plan):
        label = AS_IS if cf is None else cf.name
        echo(f"run {i + 1}/{len(plan)}: {label if cf is None else cf.title}")
        out = work_dir / ("as-is" if cf is None else cf.name)
        try:
            result = spec.run_with(cf, params, out, echo=lambda _: None)
        except KeyboardInterrupt:
            raise
        except BaseException as err:  # noqa: BLE001 — any crash is recorded, the audit goes on
            last = traceback.format_exception_only(type(err), err)[-1].strip()
            errors.append(f"{label}: crashed: {last}")
            continue
        runs[label] = {c.id: bool(c.passed) for c in result.claims}
        held = sum(runs[label].values())
        echo(f"  {held}/{len(result.claims)} claims hold")

    known = runs.get(AS_IS)
    if known is None:
        ids = sorted({c for r in runs.values() for c in r})
    else:
        ids = list(known)
    for cf in spec.counterfactuals:
        unknown = sorted(set(cf.breaks) - set(ids))
        if ids and unknown:
            errors.append(f"{cf.name}: names claims the lab does not make: {unknown}")
    claims = []
    for claim in ids:
        declared = tuple(c.name for c in spec.counterfactuals if claim in c.breaks)
        survived = tuple(n for n in declared if runs.get(n, {}).get(claim, True))
        holds = bool(known and known.get(claim))
        claims.append(ClaimAudit(spec.topic, claim, declared, holds, survived))
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
    )


def format_audit(audits: list[LabAudit]) -> str:
    """One line per claim, the errors, and the total line."""
    lines = []
    width = max((len(c.lab) + len(c.claim) + 1 for a in audits for c in a.claims), default=20)
    for audit in audits:
        lines += [c.line(width + 2) for c in audit.claims]
        lines += [f"{audit.lab}: error: {e}" for e in audit.errors]
    total = sum(len(a.claims) for a in audits)
    failing = sum(c.ok for a in audits for c in a.claims)
    lines.append(f"{failing}/{total} claims fail under a counterfactual")
    return "\n".join(lines)
