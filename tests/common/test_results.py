"""The lab contract writer: the documented JSON, the printout and the exit code."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from labs.common.results import Claim, LabResult, finish, format_summary, write_summary


def make_result(*passed: bool) -> LabResult:
    return LabResult(
        lab="demo",
        question="Does the contract hold?",
        claims=[
            Claim(f"claim_{i}", f"statement {i}", ok, {"rate": np.float64(0.25), "n": np.int64(7)})
            for i, ok in enumerate(passed)
        ],
        artifacts=["reports/demo/plot.png"],
        mlflow={"experiment": "lab-demo", "run_id": "abc123"},
    )


def test_summary_json_has_the_documented_shape(tmp_path: Path) -> None:
    path = write_summary(make_result(True, False), tmp_path)
    data = json.loads(path.read_text())
    assert set(data) == {"lab", "question", "claims", "artifacts", "mlflow"}
    assert data["claims"][0] == {
        "id": "claim_0",
        "statement": "statement 0",
        "passed": True,
        "measured": {"rate": 0.25, "n": 7},
    }
    assert data["claims"][1]["passed"] is False
    assert data["artifacts"] == ["reports/demo/plot.png"]
    assert data["mlflow"] == {"experiment": "lab-demo", "run_id": "abc123"}


def test_nan_is_written_as_null_not_invalid_json(tmp_path: Path) -> None:
    result = make_result(True)
    result.claims[0] = Claim("x", "y", True, {"auc": float("nan")})
    data = json.loads(write_summary(result, tmp_path).read_text())
    assert data["claims"][0]["measured"]["auc"] is None


@pytest.mark.parametrize(("passed", "code"), [((True, True), 0), ((True, False), 1)])
def test_exit_code_is_nonzero_when_a_claim_fails(tmp_path, capsys, passed, code) -> None:
    assert finish(make_result(*passed), tmp_path) == code
    out = capsys.readouterr().out
    assert "Does the contract hold?" in out
    assert "✓ claim_0" in out
    assert ("✗ claim_1" in out) is (code == 1)
    assert "rate=0.25" in out and "lab-demo" in out
    assert f"{sum(passed)}/2 claims hold." in out


def test_a_lab_without_claims_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="no claims"):
        write_summary(LabResult(lab="empty", question="?"), tmp_path)
    assert not (tmp_path / "summary.json").exists()


def test_format_lists_artifacts() -> None:
    assert "reports/demo/plot.png" in format_summary(make_result(True))


def test_lab_main_runs_a_lab_by_the_contract(tmp_path: Path, monkeypatch, capsys) -> None:
    from dataclasses import dataclass

    from labs.common.results import lab_main

    @dataclass(frozen=True)
    class DemoParams:
        passed: bool

    def run(params: DemoParams, out_dir: Path, echo) -> LabResult:
        echo("working …")
        return make_result(params.passed)

    (tmp_path / "params.yaml").write_text("demo_lab:\n  passed: false\n")
    monkeypatch.setenv("LABS_ROOT", str(tmp_path))
    assert lab_main("demo", "demo_lab", DemoParams, run) == 1
    out = capsys.readouterr().out
    assert "s] working …" in out and "✗ claim_0" in out
    assert json.loads((tmp_path / "reports" / "demo" / "summary.json").read_text())["lab"] == "demo"


def test_lab_main_reports_bad_params_in_one_line(tmp_path: Path, monkeypatch, capsys) -> None:
    from dataclasses import dataclass

    from labs.common.results import lab_main

    @dataclass(frozen=True)
    class DemoParams:
        passed: bool
        rows: int

    def run(params: DemoParams, out_dir: Path, echo) -> LabResult:  # pragma: no cover
        raise AssertionError("must not run with bad params")

    (tmp_path / "params.yaml").write_text("demo_lab:\n  passed: true\n")
    monkeypatch.setenv("LABS_ROOT", str(tmp_path))
    assert lab_main("demo", "demo_lab", DemoParams, run) == 2
    err = capsys.readouterr().err
    assert f"demo_lab.rows is missing in {tmp_path / 'params.yaml'}" in err
    assert "Traceback" not in err and not (tmp_path / "reports" / "demo" / "summary.json").exists()
