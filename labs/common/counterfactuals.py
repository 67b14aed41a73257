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
``CANNOT FAIL`` (:mod:`labs.common.claims_audit`). ``make claims-audit`` runs it for every
lab; katas and drills reuse the same counterfactuals as the faults a learner repairs or
diagnoses.
"""

from __future__ import annotations

import dataclasses
import re
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
