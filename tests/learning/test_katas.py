"""Katas: each checker is honest (the broken start fails it on the check its scenario is about,
the reference solution passes it, plausible wrong fixes fail it), and the learner's loop —
start, check, hint, solution, reset — refuses what it must with one readable line."""

from __future__ import annotations

import inspect
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from labs.learning.katas import cli
from labs.learning.katas.catalogue import KATAS, kata
from labs.learning.katas.kata import Kata, learner_function, run_check

SEED = 20261207  # a seed none of the labs' examples use


def git(root: Path, *args: str) -> None:
    subprocess.run(["git", *args], cwd=root, check=True, capture_output=True)


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A git checkout with the guarded files committed; LABS_ROOT points at it."""
    root = tmp_path / "project"
    (root / "labs").mkdir(parents=True)
    (root / "labs" / "lab.py").write_text("# a lab\n")
    (root / "params.yaml").write_text("drift:\n  alpha: 0.05\n")
    git(root, "init", "-q")
    git(root, "-c", "user.email=t@t", "-c", "user.name=t", "add", "-A")
    git(root, "-c", "user.email=t@t", "-c", "user.name=t", "commit", "-qm", "initial")
    monkeypatch.setenv("LABS_ROOT", str(root))
    monkeypatch.chdir(root)
    return root


# --- every kata is complete, and built from its lab's counterfactual ----------------------


@pytest.mark.parametrize("k", KATAS, ids=lambda k: k.id)
def test_each_kata_names_a_real_counterfactual_component_and_claims(
    k: Kata, repo_root: Path
) -> None:
    spec = k.spec()
    cf = spec.get(k.counterfactual)  # raises if the lab has no such counterfactual
    assert k.component in cf.components  # the kata hands the learner the part it breaks
    assert k.component in inspect.signature(spec.run).parameters
    assert set(cf.breaks) & set(k.checks)  # the scenario's check is one the fault breaks
    assert len(k.hints) == 3 and len(k.wrong_fixes) >= 2 and k.difficulty in (
        "easy", "medium", "hard",
    )  # fmt: skip
    for name in ("start", "solution", *(f"wrong_{w}" for w in k.wrong_fixes)):
        assert f"def {k.function}(" in k.source(name), name
    # the scenario tells the incident, never the fault's name
    assert k.counterfactual.replace("-", " ") not in k.scenario.lower()
    # and the lab's README sends its learners there
    assert f"make kata K={k.id}" in (repo_root / "labs" / k.topic / "README.md").read_text()


@pytest.mark.kata
@pytest.mark.parametrize("k", KATAS, ids=lambda k: k.id)
def test_the_checker_fails_the_start_and_wrong_fixes_and_passes_the_solution(
    k: Kata, tmp_path: Path
) -> None:
    """Run through the lab's real code: the start fails on a check its counterfactual breaks,
    the solution passes every check, each wrong fix fails at least one."""
    broken = set(k.spec().get(k.counterfactual).breaks)

    def failing(variant: str) -> set[str]:
        path = tmp_path / variant / k.file
        path.parent.mkdir()
        path.write_text(k.source(variant))
        with learner_function(path, k.function, k.real_component()) as fn:
            return {r.claim for r in run_check(k, fn, SEED, learner_file=path) if not r.passed}

    assert failing("start") & broken
    assert failing("solution") == set()
    for wrong in k.wrong_fixes:
        assert failing(f"wrong_{wrong}"), wrong


# --- the learner's loop --------------------------------------------------------------------

K = KATAS[0]


@pytest.fixture
def toy_lab(monkeypatch: pytest.MonkeyPatch):
    """The first kata's lab replaced by a toy with the same part and the same claims, decided
    from the threshold alone (the real lab runs in ``make test-katas``): the learner's loop is
    tested in milliseconds."""
    from dataclasses import dataclass

    from labs.common.counterfactuals import Counterfactual, LabCounterfactuals
    from labs.common.results import Claim, LabResult

    @dataclass(frozen=True)
    class ToyParams:
        seed: int = 0

    def bonferroni(alpha: float, columns: int) -> float:
        return alpha / columns

    def toy_run(p: ToyParams, out_dir: Path, echo=print, *, threshold_rule=bonferroni):
        t = threshold_rule(0.05, 9)
        rate = 1 - (1 - t) ** 9
        return LabResult("drift", "Q?", [
            Claim("false_alarm_rate_at_most_alpha", "s", rate <= 0.05, {"alarm_rate": rate}),
            Claim("covariate_detected", "s", t > 1e-6, {"threshold": t}),
            Claim("no_drift_nothing_flagged", "s", True, {}),
        ])  # fmt: skip

    broken = Counterfactual(K.counterfactual, "t", ("false_alarm_rate_at_most_alpha",), "...",
                            components={K.component: lambda alpha, columns: alpha})  # fmt: skip
    spec = LabCounterfactuals("drift", "drift", ToyParams, toy_run, (broken,))
    monkeypatch.setattr(Kata, "spec", lambda self: spec)
    return spec


def start(capsys) -> Path:
    assert cli.main(["start", K.id]) == 0
    out = capsys.readouterr().out
    assert K.scenario in out and K.file in out
    return cli.learner_file(K)


def test_start_writes_the_broken_file_once_and_lists_the_kata_as_started(
    project: Path, capsys
) -> None:
    path = start(capsys)
    assert path.read_text() == K.source("start")
    assert (project / ".katas" / "current").read_text().strip() == K.id
    path.write_text(K.source("start") + "# my notes\n")
    assert cli.main(["start", K.id]) == 0  # starting again keeps the learner's work
    assert path.read_text().endswith("# my notes\n")
    assert "your file from before, kept" in capsys.readouterr().out
    assert cli.status(K, cli.read_progress()) == "started"
    assert cli.main(["start", "no-such-kata"]) == 2
    assert f"kata: no kata 'no-such-kata'; katas: {K.id}" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("def column_threshold(alpha, columns):\n    return alpha /\n", "line 2: syntax error"),
        ("import nowhere_to_be_found\n", "line 1: ModuleNotFoundError"),
        ("def column_threshold(alpha):\n    return alpha\n", "column_threshold(alpha) — the lab "
         "calls column_threshold(alpha, columns)"),
        ("def threshold(alpha, columns):\n    return alpha\n", "no function column_threshold()"),
    ],
)  # fmt: skip
def test_a_broken_learner_file_is_one_readable_line_and_exit_2(
    project: Path, capsys, text: str, expected: str
) -> None:
    path = start(capsys)
    path.write_text(text)
    assert cli.main(["check"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and expected in err and "Traceback" not in err
    assert err.startswith(f"kata: {K.file}")
    assert cli.read_progress()[K.id]["checks"] == 0  # not a check: nothing was measured


def test_an_exception_in_the_learners_function_names_its_line(
    project: Path, capsys, toy_lab
) -> None:
    path = start(capsys)
    path.write_text(
        "def column_threshold(alpha, columns):\n    return alpha / (columns - columns)\n"
    )
    with learner_function(path, K.function, K.real_component()) as fn:
        with pytest.raises(cli.KataError, match=r"threshold.py line 2: ZeroDivisionError"):
            run_check(K, fn, SEED, learner_file=path)


def test_edits_outside_the_kata_file_are_refused(project: Path, capsys) -> None:
    start(capsys)
    (project / "params.yaml").write_text("drift:\n  alpha: 0.5\n")  # "relax" the budget
    assert cli.main(["check"]) == 2
    err = capsys.readouterr().err.strip()
    assert err == (
        "kata: edits outside the kata's file: params.yaml — a kata is solved in threshold.py "
        "alone (undo with: git checkout -- params.yaml)"
    )
    assert cli.read_progress()[K.id]["checks"] == 0


def test_hints_come_one_at_a_time_and_the_solution_only_after_a_check(
    project: Path, capsys
) -> None:
    path = start(capsys)
    for shown in (1, 2, 3, 3):
        assert cli.main(["hint"]) == 0
        out = capsys.readouterr().out
        assert out.count("Hint ") == shown and K.hints[shown - 1] in out
    assert cli.main(["solution"]) == 2
    assert "after a first check: make kata-check" in capsys.readouterr().err
    progress = cli.read_progress()
    progress[K.id]["checks"] = 1  # as after a first check
    cli.write_progress(progress)
    mine = path.read_text()
    assert cli.main(["solution"]) == 0
    diff = capsys.readouterr().out
    assert diff.startswith(f"--- {K.file} (yours)") and "+MARGIN = 0.8" in diff
    assert path.read_text() == mine  # shown, not applied
    assert cli.main(["solution", "--apply"]) == 0
    assert path.read_text() == K.source("solution")
    assert path.with_name(K.file + ".before-solution").read_text() == mine


def test_reset_goes_back_to_the_start_and_keeps_the_learners_file(project: Path, capsys) -> None:
    path = start(capsys)
    path.write_text("def column_threshold(alpha, columns):\n    return 0.001\n")
    assert cli.main(["reset"]) == 0
    assert path.read_text() == K.source("start")
    assert "return 0.001" in path.with_name(K.file + ".before-reset").read_text()


def test_without_a_started_kata_the_commands_say_how_to_start(project: Path, capsys) -> None:
    for command in ("check", "hint", "solution", "reset"):
        assert cli.main([command]) == 2
        assert "no kata started: make kata K=<id>" in capsys.readouterr().err


def test_a_check_passes_and_is_recorded_as_solved(project: Path, capsys, toy_lab) -> None:
    path = start(capsys)
    path.write_text(K.source("solution"))
    assert cli.main(["check", "--seed", str(SEED)]) == 0
    out = capsys.readouterr().out
    assert f"fresh seed ({SEED})" in out and "Solved ✓" in out
    assert out.count("  ✓ ") == len(K.checks)
    entry = cli.read_progress()[K.id]
    assert entry["solved"] and entry["checks"] == 1 and entry["last_check"]["seed"] == SEED
    assert cli.status(K, cli.read_progress()) == "solved"


def test_ctrl_c_during_a_check_exits_130_and_leaves_the_workspace_as_it_was(
    project: Path, capsys
) -> None:
    path = start(capsys)
    before = (path.read_text(), (project / ".katas" / "progress.json").read_text())
    env = {**os.environ, "LABS_ROOT": str(project)}
    process = subprocess.Popen(
        [sys.executable, "-m", "labs.learning.katas.cli", "check"], cwd=project, env=env,
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True,
    )  # fmt: skip
    try:
        assert process.stdout is not None
        for line in process.stdout:
            if line.startswith("Checking"):
                break
        os.killpg(process.pid, signal.SIGINT)
        _, err = process.communicate(timeout=60)
    finally:
        from labs.common.processes import stop_process_group

        stop_process_group(process, grace=5)
    assert process.returncode == 130, err[-1500:]
    assert err.strip().splitlines()[-1] == "kata: interrupted; your file is as it was."
    assert (path.read_text(), (project / ".katas" / "progress.json").read_text()) == before


def test_the_list_shows_every_kata_with_its_status(project: Path, capsys) -> None:
    start(capsys)
    assert cli.main(["list"]) == 0
    out = capsys.readouterr().out
    assert f"{len(KATAS)} katas" in out
    row = next(line for line in out.splitlines() if K.id in line)
    assert K.topic in row and "started" in row and K.difficulty in row
    assert kata(K.id) is K


class SeedNotUsable(Exception):
    """A toy lab's way of saying a seed cannot set its scenario up."""


def test_a_check_on_several_seeds_passes_on_most_and_skips_unusable_seeds(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    from dataclasses import dataclass, replace

    from labs.common.counterfactuals import Counterfactual, LabCounterfactuals
    from labs.common.results import Claim, LabResult

    @dataclass(frozen=True)
    class ToyParams:
        seed: int = 0

    seen: list[int] = []

    def toy_run(p: ToyParams, out_dir: Path, echo=print, *, rule=lambda seed: True) -> LabResult:
        seen.append(p.seed)
        if p.seed % 7 == 0:
            raise SeedNotUsable(f"seed {p.seed}")
        held = bool(rule(p.seed))
        return LabResult("toy", "Q?", [Claim("holds", "It holds.", held, {"seed": p.seed})])

    spec = LabCounterfactuals(
        "toy", "toy", ToyParams, toy_run,
        (Counterfactual("never", "never", ("holds",), "...", components={"rule": bool}),),
    )  # fmt: skip
    toy = replace(KATAS[0], checks=("holds",), component="rule", repeats=3, draws={},
                  unusable_seed=("SeedNotUsable",), params={})  # fmt: skip
    monkeypatch.setattr(Kata, "spec", lambda self: spec)
    step = 7919

    def check(rule, seed: int = 1):
        seen.clear()
        return run_check(toy, rule, seed, learner_file=tmp_path / "rule.py")[0]

    # fails on one seed of three: passes, and says on how many it held
    first_fails = check(lambda s: s != 1)
    assert first_fails.passed and first_fails.measured["held_on_seeds"] == "2/3"
    assert first_fails.measured["seed"] == 1 + step  # the numbers of a seed that held
    assert not check(lambda s: s == 1).passed  # holds on one of three: fails
    # a seed the lab cannot set up is skipped, the next one used: still three runs
    seed = 7 - step  # the second seed of the check (seed + step) is 7: unusable
    assert check(lambda s: True, seed).measured["held_on_seeds"] == "3/3"
    assert seen == [seed, 7, seed + 2 * step, seed + 3 * step]
