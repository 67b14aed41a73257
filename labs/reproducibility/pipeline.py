"""``dvc repro`` in a scratch clone: a param change re-runs only the stages that depend on it,
and a second ``dvc repro`` is a no-op. The user's checkout is only read (its committed code
and its built outputs); every command runs in the clone."""

from __future__ import annotations

import re
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import yaml

from labs.reproducibility.scratch import (
    configure_dvc,
    dvc_executable,
    lock_outs,
    md5_file,
    run_command,
    scratch_dir,
    scratch_env,
)

_RAN = re.compile(r"^Running stage '([^']+)'", re.MULTILINE)


@dataclass(frozen=True)
class ReproSteps:
    """Which stages each ``dvc repro`` ran after a param change, and what the second left."""

    stages: list[str]  # in pipeline order
    outputs_restored: int  # built outputs taken from the user's checkout (md5 = dvc.lock)
    changed_param: str
    expected: list[str]  # the stages that depend on the param, from dvc.yaml
    first: list[str]  # repro 1, after the param change
    second: list[str]  # repro 2: nothing, if repro is a no-op
    second_changed_nothing: bool  # dvc.lock and every output byte-identical across repro 2
    seconds: dict[str, float]


def dependent_stages(dvc_yaml: str, param: str) -> list[str]:
    """Stages that list ``param`` (``section.key``), plus every stage downstream of them (a
    dep that is another stage's output), in pipeline order."""
    stages = yaml.safe_load(dvc_yaml)["stages"]
    outs = {name: set(_paths(s.get("outs", []) + s.get("metrics", []) + s.get("plots", [])))
            for name, s in stages.items()}  # fmt: skip
    hit = {name for name, s in stages.items() if param in _paths(s.get("params", []))}
    changed = True
    while changed:
        changed = False
        for name, s in stages.items():
            if name not in hit and any(d in outs[h] for h in hit for d in s.get("deps", [])):
                hit.add(name)
                changed = True
    return [name for name in stages if name in hit]


def _paths(entries: list) -> list[str]:
    return [next(iter(e)) if isinstance(e, dict) else str(e) for e in entries]


def set_param(params_yaml: Path, assignment: str) -> None:
    """Set ``section.key=value`` in a params.yaml by editing one line (comments survive)."""
    key, _, value = assignment.partition("=")
    section, _, name = key.partition(".")
    lines = params_yaml.read_text().splitlines(keepends=True)
    current = None
    for i, line in enumerate(lines):
        if line.strip() and not line[0].isspace():
            current = line.split(":")[0].strip()
        elif current == section and line.strip().split(":")[0] == name:
            indent = line[: len(line) - len(line.lstrip())]
            lines[i] = f"{indent}{name}: {value}\n"
            params_yaml.write_text("".join(lines))
            return
    raise ValueError(f"{params_yaml} has no {key} to change")


def pipeline_as_committed(repo: Path) -> None:
    """The clone's ``dvc.yaml`` as committed (the lab's pipeline, unchanged)."""


def repro_twice_after_change(
    source: Path,
    changed_param: str,
    timeout_s: float,
    edit_pipeline: Callable[[Path], None] = pipeline_as_committed,
) -> ReproSteps:
    """Clone ``source`` at HEAD into a scratch, restore its built state, change one param,
    then ``dvc repro`` twice; count the stages each run ran. ``edit_pipeline`` gets the
    clone first (a counterfactual declares the pipeline differently there)."""
    with scratch_dir() as root:
        repo = root / "repo"
        env = scratch_env(root)
        dvc = dvc_executable()
        # --shared borrows the objects read-only: fast, and the user's .git is not written.
        run_command(["git", "clone", "--quiet", "--shared", str(source), str(repo)], root, env, 60)
        configure_dvc(repo, root / "dvc-cache")
        edit_pipeline(repo)
        # Start from what the user already built — only outputs whose bytes dvc.lock pins —
        # instead of minutes of `dvc repro` from nothing; `dvc commit` puts them in the
        # scratch's cache (an output missing from the cache counts as changed).
        restored = 0
        for path, md5 in lock_outs((repo / "dvc.lock").read_text()).items():
            if md5_file(source / path) == md5:
                (repo / path).parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(source / path, repo / path)
                restored += 1
        run_command([dvc, "commit", "--force", "--quiet"], repo, env, timeout_s)
        set_param(repo / "params.yaml", changed_param)
        seconds: dict[str, float] = {}

        def repro(step: str) -> list[str]:
            start = time.perf_counter()
            out = run_command([dvc, "repro"], repo, env, timeout_s)
            seconds[step] = round(time.perf_counter() - start, 2)
            return _RAN.findall(out)

        first = repro("first")
        before = _state(repo)
        second = repro("second")
        dvc_yaml = (repo / "dvc.yaml").read_text()
        return ReproSteps(
            stages=list(yaml.safe_load(dvc_yaml)["stages"]),
            outputs_restored=restored,
            changed_param=changed_param,
            expected=dependent_stages(dvc_yaml, changed_param.partition("=")[0]),
            first=first,
            second=second,
            second_changed_nothing=_state(repo) == before,
            seconds=seconds,
        )


def _state(repo: Path) -> dict[str, str | None]:
    outs = lock_outs((repo / "dvc.lock").read_text())
    return {"dvc.lock": md5_file(repo / "dvc.lock")} | {p: md5_file(repo / p) for p in outs}
