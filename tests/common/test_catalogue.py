"""One catalogue: the Makefile menu, the README table and the labs' printouts all read it."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from labs.common.catalogue import TOPICS, labs, readme_table, ready_labs, topic


def make(repo_root: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["make", "-s", *args], cwd=repo_root, capture_output=True, text=True, timeout=60
    )


def lab_packages(repo_root: Path) -> list[str]:
    return sorted(p.parent.name for p in (repo_root / "labs").glob("*/__main__.py"))


def test_fifteen_labs_and_the_questions_that_are_not_labs() -> None:
    assert len(labs()) == 15
    assert len({t.id for t in TOPICS}) == len(TOPICS)
    assert {t.group for t in TOPICS} == {"basics", "technical", "cloud", "behavioural"}
    for t in TOPICS:
        assert t.question.endswith("?") and len(t.answer.split()) >= 15, t.id


def test_ready_labs_are_exactly_the_lab_packages(repo_root: Path) -> None:
    assert sorted(t.id for t in ready_labs()) == lab_packages(repo_root)


def test_make_help_lists_every_lab_with_its_question_and_status(repo_root: Path) -> None:
    result = make(repo_root)
    assert result.returncode == 0
    for target in ("setup", "test", "lint", "lock", "bench", "mlflow-ui", "repro"):
        assert any(line.split()[:1] == [target] for line in result.stdout.splitlines()), target
    for t in labs():
        line = next(ln for ln in result.stdout.splitlines() if ln.split()[:1] == [t.make_target])
        assert t.question in line
        assert line.endswith("(planned)") is (t.status == "planned"), line


def test_readme_table_is_the_catalogue(repo_root: Path) -> None:
    assert readme_table() in (repo_root / "README.md").read_text()


def test_each_lab_readme_asks_the_catalogue_question(repo_root: Path) -> None:
    for t in ready_labs():
        text = (repo_root / "labs" / t.id / "README.md").read_text()
        assert t.question in text, t.id


@pytest.mark.parametrize(
    ("target", "message"),
    [
        ("lab-nosuchthing", "no lab 'nosuchthing'; labs: drift, testing"),
        ("lab-what_is_mlops", "is a seed question with no lab"),
    ],
)
def test_unknown_lab_is_refused_with_the_list(repo_root: Path, target: str, message: str) -> None:
    result = make(repo_root, target)
    assert result.returncode == 2 and message in result.stderr
    assert ".venv" not in result.stdout  # refused before anything is installed


def test_a_planned_lab_says_so_and_fails(monkeypatch, capsys) -> None:
    # Every lab of the seed is built; a topic added to the catalogue later starts as planned.
    import dataclasses

    import labs.common.catalogue as catalogue

    planned = dataclasses.replace(catalogue.topic("drift"), status="planned")
    topics = tuple(planned if t.id == "drift" else t for t in catalogue.TOPICS)
    monkeypatch.setattr(catalogue, "TOPICS", topics)
    assert catalogue._main(["check", "drift"]) == 3
    err = capsys.readouterr().err
    assert "lab 'drift' is planned" in err and planned.question in err


def test_topic_lookup_names_the_valid_ids() -> None:
    assert topic("drift").experiment == "lab-drift"
    with pytest.raises(KeyError, match="labs: drift, testing, versioning"):
        topic("drfit")


def test_every_ready_lab_has_a_test_that_reads_its_summary_through_the_contract(
    repo_root: Path,
) -> None:
    for t in ready_labs():
        test_file = repo_root / "tests" / "labs" / f"test_{t.id}.py"
        assert test_file.exists(), t.id
        assert "read_summary" in test_file.read_text(), f"{test_file} never validates its summary"
        assert (repo_root / "labs" / t.id / "__main__.py").read_text().count("lab_main(") == 1
