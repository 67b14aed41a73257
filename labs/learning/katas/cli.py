"""``python -m labs.learning.katas.cli list | start | check | hint | solution | reset`` — behind
``make kata``, ``make kata-check``, ``make kata-hint``, ``make kata-solution``, ``make kata-reset``.

The learner's workspace is ``.katas/`` in the project (git-ignored): ``<id>/<file>`` is the
file they repair, ``current`` the kata they work on, ``progress.json`` what they did (started,
checks run, hints seen, solved). Nothing there is ever overwritten without a copy: a reset or
an applied solution keeps the learner's file as ``<file>.before-reset`` /
``<file>.before-solution``.

Exit codes: 0 solved (or a command done), 1 a check still fails, 2 refused (unknown kata, a
broken learner file, edits outside the kata's file, a solution before a first check), 130 on
Ctrl-C (the workspace is left as it was).
"""

from __future__ import annotations

import argparse
import difflib
import json
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from labs.common.claims_audit import numbers_line
from labs.common.entry import quiet_libraries
from labs.common.paths import project_root
from labs.learning.katas.catalogue import KATAS, kata
from labs.learning.katas.kata import (
    Kata,
    KataError,
    draw_seed,
    learner_function,
    run_check,
)

EXIT_OK, EXIT_FAILED, EXIT_REFUSED, EXIT_INTERRUPTED = 0, 1, 2, 130
# What a learner must not touch to pass a check: the settings, the labs (and the checker).
GUARDED = ("params.yaml", "dvc.yaml", "labs", "pipelines", "Makefile")


def workspace(root: Path | None = None) -> Path:
    return (root or project_root()) / ".katas"


def learner_file(k: Kata, root: Path | None = None) -> Path:
    return workspace(root) / k.id / k.file


def read_progress(root: Path | None = None) -> dict[str, dict[str, Any]]:
    try:
        data = json.loads((workspace(root) / "progress.json").read_text())
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def write_progress(progress: dict[str, dict[str, Any]], root: Path | None = None) -> None:
    path = workspace(root) / "progress.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(progress, indent=2, sort_keys=True) + "\n")
    tmp.replace(path)


def entry_of(k: Kata, progress: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """The kata's progress entry, made when first needed."""
    return progress.setdefault(k.id, {"started_at": _now(), "checks": 0, "hints": 0})


def status(k: Kata, progress: dict[str, dict[str, Any]]) -> str:
    entry = progress.get(k.id, {})
    return "solved" if entry.get("solved") else "started" if entry else "new"


def current(given: str | None, root: Path | None = None) -> Kata:
    """The kata named, or the one started last."""
    if given:
        return kata(given)
    try:
        return kata((workspace(root) / "current").read_text().strip())
    except OSError:
        raise KataError("no kata started: make kata K=<id> (make kata lists them)") from None


def outside_edits(root: Path | None = None) -> list[str]:
    """Files of the project changed since the last commit, outside the learner's workspace."""
    root = root or project_root()
    try:
        out = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no", "--", *GUARDED],
            cwd=root, capture_output=True, text=True, timeout=30, check=True,
        ).stdout  # fmt: skip
    except (OSError, subprocess.SubprocessError):
        return []  # not a git checkout: nothing to compare with
    return sorted({line[3:].strip() for line in out.splitlines() if line.strip()})


# --- commands -------------------------------------------------------------------------------


def cmd_list(root: Path | None = None) -> int:
    progress = read_progress(root)
    width = max(len(k.id) for k in KATAS) + 2
    print(f"{len(KATAS)} katas — make kata K=<id> to start one\n")
    print(f"  {'id':<{width}}{'topic':<16}{'level':<8}status")
    for k in KATAS:
        print(f"  {k.id:<{width}}{k.topic:<16}{k.difficulty:<8}{status(k, progress)}")
        print(f"      {k.title} — {k.question()}")
    return EXIT_OK


def cmd_start(kata_id: str, root: Path | None = None) -> int:
    k = kata(kata_id)
    path = learner_file(k, root)
    path.parent.mkdir(parents=True, exist_ok=True)
    kept = path.exists()
    if not kept:
        path.write_text(k.source("start"))
    (workspace(root) / "current").write_text(k.id + "\n")
    progress = read_progress(root)
    entry_of(k, progress)
    write_progress(progress, root)
    print(f"Kata {k.id} ({k.topic}, {k.difficulty}): {k.title}\n")
    print(k.scenario + "\n")
    print(f"The interview question behind it: {k.question()}\n")
    print(f"Edit:   {_shown(path)}" + ("   (your file from before, kept)" if kept else ""))
    print("Check:  make kata-check      Hints: make kata-hint (3)      Start over: make kata-reset")
    return EXIT_OK


def cmd_check(kata_id: str | None, root: Path | None = None, seed: int | None = None) -> int:
    k = current(kata_id, root)
    changed = outside_edits(root)
    if changed:
        raise KataError(
            f"edits outside the kata's file: {', '.join(changed)} — a kata is solved in "
            f"{k.file} alone (undo with: git checkout -- {' '.join(changed)})"
        )
    path = learner_file(k, root)
    if not path.exists():
        raise KataError(f"{_shown(path)} is missing: make kata K={k.id} (or make kata-reset)")
    seed = draw_seed() if seed is None else seed
    with learner_function(path, k.function, k.real_component()) as fn:
        print(f"Checking {_shown(path)} through the {k.topic} lab on a fresh seed ({seed}) …",
              flush=True)  # fmt: skip
        started = time.perf_counter()
        store = f"sqlite:///{workspace(root) / 'mlflow.db'}"  # the katas' runs, kept apart
        with quiet_libraries():  # the lab's library chatter off, as when a lab runs
            results = run_check(k, fn, seed, learner_file=path, tracking_uri=store)
    for r in results:
        mark = "✓" if r.passed else "✗"
        # the claim and its numbers; not its statement, which may spell out the fix
        print(f"  {mark} {r.claim}: {numbers_line(r.measured)}")
    solved = all(r.passed for r in results)
    progress = read_progress(root)
    entry = entry_of(k, progress)
    entry["checks"] = int(entry.get("checks", 0)) + 1
    entry["last_check"] = {"at": _now(), "seed": seed, "passed": solved}
    if solved and not entry.get("solved"):
        entry["solved"], entry["solved_at"] = True, _now()
    write_progress(progress, root)
    took = time.perf_counter() - started
    if solved:
        print(f"\nSolved ✓ — every check holds ({took:.1f} s). Next: make kata")
        return EXIT_OK
    failing = [r.claim for r in results if not r.passed]
    print(f"\nStill failing: {', '.join(failing)} ({took:.1f} s). A hint: make kata-hint")
    return EXIT_FAILED


def cmd_hint(kata_id: str | None, root: Path | None = None) -> int:
    k = current(kata_id, root)
    progress = read_progress(root)
    entry = entry_of(k, progress)
    shown = min(int(entry.get("hints", 0)) + 1, len(k.hints))
    entry["hints"] = shown
    write_progress(progress, root)
    for i in range(shown):
        print(f"Hint {i + 1}/{len(k.hints)}: {k.hints[i]}")
    if shown == len(k.hints):
        print("That was the last hint; after a check, make kata-solution shows the reference.")
    return EXIT_OK


def cmd_solution(kata_id: str | None, apply: bool, root: Path | None = None) -> int:
    k = current(kata_id, root)
    if not int(read_progress(root).get(k.id, {}).get("checks", 0)):
        raise KataError("the reference solution is shown after a first check: make kata-check")
    path = learner_file(k, root)
    mine = path.read_text() if path.exists() else ""
    solution = k.source("solution")
    diff = difflib.unified_diff(
        mine.splitlines(keepends=True), solution.splitlines(keepends=True),
        f"{k.file} (yours)", f"{k.file} (reference)",
    )  # fmt: skip
    sys.stdout.writelines(diff)
    if apply:
        if path.exists():
            path.with_name(path.name + ".before-solution").write_text(mine)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(solution)
        print(f"\nApplied to {_shown(path)} (yours kept as {path.name}.before-solution).")
    return EXIT_OK


def cmd_reset(kata_id: str | None, root: Path | None = None) -> int:
    k = current(kata_id, root)
    path = learner_file(k, root)
    if path.exists():
        path.with_name(path.name + ".before-reset").write_text(path.read_text())
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(k.source("start"))
    kept = f" (yours kept as {path.name}.before-reset)" if path.with_name(
        path.name + ".before-reset").exists() else ""  # fmt: skip
    print(f"{_shown(path)} is back at the start{kept}.")
    return EXIT_OK


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def _shown(path: Path) -> str:
    try:
        return str(path.relative_to(Path.cwd()))
    except ValueError:
        return str(path)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m labs.learning.katas.cli", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("list", help="the katas and how far you got")
    start = commands.add_parser("start", help="start a kata (or go back to one)")
    start.add_argument("kata")
    for name, text in (
        ("check", "check your file"), ("hint", "the next hint"),
        ("solution", "the reference diff"), ("reset", "back to the start"),
    ):  # fmt: skip
        sub = commands.add_parser(name, help=text)
        sub.add_argument("kata", nargs="?", help="default: the kata started last")
        if name == "solution":
            sub.add_argument("--apply", action="store_true", help="write it to your file")
        if name == "check":
            sub.add_argument("--seed", type=int, help="default: drawn now")
    args = parser.parse_args(argv)
    from labs.common.entry import Interrupted, interrupt_on_signals

    try:
        with interrupt_on_signals():
            if args.command == "list":
                return cmd_list()
            if args.command == "start":
                return cmd_start(args.kata)
            if args.command == "check":
                return cmd_check(args.kata, seed=args.seed)
            if args.command == "hint":
                return cmd_hint(args.kata)
            if args.command == "solution":
                return cmd_solution(args.kata, args.apply)
            return cmd_reset(args.kata)
    except KataError as err:
        print(f"kata: {err}", file=sys.stderr)
        return EXIT_REFUSED
    except (KeyboardInterrupt, Interrupted):
        print("\nkata: interrupted; your file is as it was.", file=sys.stderr)
        return EXIT_INTERRUPTED


if __name__ == "__main__":
    sys.exit(main())
