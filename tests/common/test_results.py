"""The lab contract writer: the documented JSON, the printout and the exit code."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from labs.common.results import (
    Claim,
    LabResult,
    SummaryError,
    finish,
    format_summary,
    read_summary,
    validate_summary,
    write_summary,
)


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


def test_a_check_that_did_not_run_fails_its_claim_and_a_model_claim_says_so(
    tmp_path: Path, capsys
) -> None:
    unchecked = Claim.not_checked("lock", "The lock reproduces.", "uv timed out after 60 s")
    model = Claim("cheaper", "Spot is cheaper, on the price list.", True, {"usd": 1.0}, "model")
    result = LabResult("demo", "Does the contract hold?", [unchecked, model])
    assert not unchecked.passed and not unchecked.checked and not result.passed
    assert finish(result, tmp_path) == 1
    out = capsys.readouterr().out
    assert "✗ lock [not checked]" in out and "not_checked=uv timed out after 60 s" in out
    assert "✓ cheaper [model: a calculation on stated inputs]" in out
    back = read_summary(tmp_path / "summary.json")
    assert back.claim("cheaper").kind == "model" and not back.claim("lock").checked
    data = json.loads((tmp_path / "summary.json").read_text())
    data["claims"][0]["passed"] = True  # a check that did not run may never be a ✓
    data["passed"] = False
    with pytest.raises(SummaryError, match="claim lock was not checked but is marked passed"):
        validate_summary(data)
    with pytest.raises(ValueError, match="kind must be in"):
        Claim("x", "x", True, {"n": 1}, kind="guess")


def test_summary_json_has_the_documented_shape(tmp_path: Path) -> None:
    path = write_summary(make_result(True, False), tmp_path)
    data = json.loads(path.read_text())
    assert set(data) == {
        "schema_version", "lab", "question", "passed", "claims", "params", "artifacts", "mlflow",
        "git_commit", "git_dirty", "generated_at", "duration_s", "versions",
    }  # fmt: skip
    assert data["schema_version"] == 2 and data["passed"] is False
    assert len(data["git_commit"]) == 40 and isinstance(data["git_dirty"], bool)
    assert data["generated_at"].endswith("+00:00")
    assert data["versions"]["mlflow"].startswith("3.") and "python" in data["versions"]
    assert data["claims"][0] == {
        "id": "claim_0",
        "statement": "statement 0",
        "passed": True,
        "measured": {"rate": 0.25, "n": 7},
        "kind": "measured",
    }
    assert data["claims"][1]["passed"] is False
    assert data["artifacts"] == ["reports/demo/plot.png"]
    assert data["mlflow"] == {"experiment": "lab-demo", "run_id": "abc123"}


def test_nan_is_written_as_null_not_invalid_json(tmp_path: Path) -> None:
    result = make_result(True)
    result.claims[0] = Claim("x", "a statement", True, {"auc": float("nan")})
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
    assert f"{sum(passed)}/2 claims hold; each shown to fail under a counterfactual" in out


def test_a_lab_without_claims_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="no claims"):
        write_summary(LabResult(lab="empty", question="?"), tmp_path)
    assert not (tmp_path / "summary.json").exists()


def test_format_lists_artifacts() -> None:
    assert "reports/demo/plot.png" in format_summary(make_result(True))


def test_lab_main_runs_a_lab_by_the_contract(tmp_path: Path, monkeypatch, capsys) -> None:
    from dataclasses import dataclass

    from labs.common.entry import lab_main

    @dataclass(frozen=True)
    class DemoParams:
        passed: bool

    def run(params: DemoParams, out_dir: Path, echo) -> LabResult:
        echo("working …")
        return make_result(params.passed)

    (tmp_path / "params.yaml").write_text("demo_lab:\n  passed: false\n")
    monkeypatch.setenv("LABS_ROOT", str(tmp_path))
    monkeypatch.setattr("labs.common.catalogue.topic", _demo_topic)
    assert lab_main("demo", "demo_lab", DemoParams, run, argv=[]) == 1
    out = capsys.readouterr().out
    assert "s] working …" in out and "✗ claim_0" in out
    assert json.loads((tmp_path / "reports" / "demo" / "summary.json").read_text())["lab"] == "demo"


def test_lab_main_reports_bad_params_in_one_line(tmp_path: Path, monkeypatch, capsys) -> None:
    from dataclasses import dataclass

    from labs.common.entry import lab_main

    @dataclass(frozen=True)
    class DemoParams:
        passed: bool
        rows: int

    def run(params: DemoParams, out_dir: Path, echo) -> LabResult:  # pragma: no cover
        raise AssertionError("must not run with bad params")

    (tmp_path / "params.yaml").write_text("demo_lab:\n  passed: true\n")
    monkeypatch.setenv("LABS_ROOT", str(tmp_path))
    monkeypatch.setattr("labs.common.catalogue.topic", _demo_topic)
    assert lab_main("demo", "demo_lab", DemoParams, run, argv=[]) == 2
    err = capsys.readouterr().err
    assert "key demo_lab.rows is missing" in err and str(tmp_path / "params.yaml") in err
    assert "Traceback" not in err and not (tmp_path / "reports" / "demo" / "summary.json").exists()


def test_read_summary_round_trips_typed(tmp_path: Path) -> None:
    from labs.common.results import read_summary, stamp

    result = stamp(make_result(True, True), params={"rows": 10}, started=0.0)
    summary = read_summary(write_summary(result, tmp_path))
    assert summary.passed is True and summary.lab == "demo"
    assert summary.claim("claim_1").measured == {"rate": 0.25, "n": 7}
    assert summary.params == {"rows": 10}
    assert summary.generated_at.tzinfo is not None and summary.duration_s > 0


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (lambda d: d.pop("git_commit"), "'git_commit' is a required property"),
        (lambda d: d.update(schema_version=1), "2 was expected"),
        (lambda d: d["claims"].clear(), "claims"),
        (lambda d: d["claims"][0].update(passed="yes"), "claims/0/passed"),
        (lambda d: d.update(generated_at="yesterday"), "generated_at"),
        (lambda d: d.update(passed=True), "but the claims say False"),
        (lambda d: d.update(extra=1), "Additional properties"),
    ],
)
def test_read_summary_refuses_a_broken_summary(tmp_path: Path, mutate, message) -> None:
    from labs.common.results import SummaryError, read_summary

    path = write_summary(make_result(True, False), tmp_path)
    data = json.loads(path.read_text())
    mutate(data)
    path.write_text(json.dumps(data))
    with pytest.raises(SummaryError, match=message.replace("(", r"\(")):
        read_summary(path)


def test_read_summary_names_a_missing_file(tmp_path: Path) -> None:
    from labs.common.results import SummaryError, read_summary

    with pytest.raises(SummaryError, match="has the lab run"):
        read_summary(tmp_path / "nope" / "summary.json")


def test_lab_main_maps_every_typed_refusal_to_exit_2(tmp_path: Path, monkeypatch, capsys) -> None:
    from dataclasses import dataclass

    from labs.common.entry import lab_main
    from labs.common.errors import Refusal

    class ModelRefused(Refusal):
        pass

    @dataclass(frozen=True)
    class DemoParams:
        passed: bool

    def run(params: DemoParams, out_dir: Path, echo) -> LabResult:
        raise ModelRefused("that model file is not trusted")

    (tmp_path / "params.yaml").write_text("demo_lab:\n  passed: true\n")
    monkeypatch.setenv("LABS_ROOT", str(tmp_path))
    monkeypatch.setattr("labs.common.catalogue.topic", _demo_topic)
    assert lab_main("demo", "demo_lab", DemoParams, run, argv=[]) == 2
    err = capsys.readouterr().err
    assert err.strip() == "lab demo: refused: that model file is not trusted"


def test_lab_main_exits_130_on_ctrl_c(tmp_path: Path, monkeypatch, capsys) -> None:
    from dataclasses import dataclass

    from labs.common.entry import lab_main

    @dataclass(frozen=True)
    class DemoParams:
        passed: bool

    def run(params: DemoParams, out_dir: Path, echo) -> LabResult:
        raise KeyboardInterrupt

    (tmp_path / "params.yaml").write_text("demo_lab:\n  passed: true\n")
    monkeypatch.setenv("LABS_ROOT", str(tmp_path))
    monkeypatch.setattr("labs.common.catalogue.topic", _demo_topic)
    assert lab_main("demo", "demo_lab", DemoParams, run, argv=[]) == 130
    assert "Traceback" not in capsys.readouterr().err
    assert not (tmp_path / "reports" / "demo" / "summary.json").exists()


def _demo_topic(topic_id: str):
    from labs.common.catalogue import Topic

    return Topic(topic_id, "Does the contract hold?", "It does.", "basics", "ready")


def test_the_same_lab_twice_at_once_is_refused_naming_the_pid(tmp_path: Path, capsys) -> None:
    import os

    from labs.common.entry import LabBusyError, run_lock

    with run_lock(tmp_path, "demo"):
        with pytest.raises(LabBusyError, match=rf"lab demo is running \(pid {os.getpid()}\)"):
            with run_lock(tmp_path, "demo"):
                pass  # pragma: no cover
    with run_lock(tmp_path, "demo"):  # released: the next run goes ahead
        pass


def test_lab_main_puts_library_logging_back_when_it_returns(
    tmp_path: Path, monkeypatch, capsys
) -> None:
    """A lab run in-process (a test session, a notebook) must not leave Prefect's loggers at
    WARNING: that silently dropped every flow-run log line later in the same process."""
    import logging
    import os
    from dataclasses import dataclass

    from labs.common.entry import lab_main

    @dataclass(frozen=True)
    class DemoParams:
        passed: bool

    seen: dict[str, object] = {}

    def run(params: DemoParams, out_dir: Path, echo) -> LabResult:
        seen["prefect"] = logging.getLogger("prefect").level
        seen["env"] = os.environ.get("PREFECT_LOGGING_LEVEL")
        return make_result(params.passed)

    monkeypatch.delenv("PREFECT_LOGGING_LEVEL", raising=False)
    before = logging.getLogger("prefect").level
    logging.getLogger("prefect").setLevel(logging.INFO)
    (tmp_path / "params.yaml").write_text("demo_lab:\n  passed: true\n")
    monkeypatch.setenv("LABS_ROOT", str(tmp_path))
    monkeypatch.setattr("labs.common.catalogue.topic", _demo_topic)
    try:
        assert lab_main("demo", "demo_lab", DemoParams, run, argv=[]) == 0
        assert seen == {"prefect": logging.WARNING, "env": "WARNING"}  # quiet while it runs
        assert logging.getLogger("prefect").level == logging.INFO  # and put back after
        assert "PREFECT_LOGGING_LEVEL" not in os.environ
    finally:
        logging.getLogger("prefect").setLevel(before)


def test_ctrl_c_stops_a_lab_even_if_the_shell_ignored_sigint(
    tmp_path: Path, monkeypatch, capsys
) -> None:
    """A lab started as a background job of a script inherits SIGINT "ignored"; Ctrl-C (or the
    SIGINT a supervisor sends) must still stop it with 130."""
    import os
    import signal
    import time
    from dataclasses import dataclass

    from labs.common.entry import lab_main

    @dataclass(frozen=True)
    class DemoParams:
        passed: bool

    def run(params: DemoParams, out_dir: Path, echo) -> LabResult:
        os.kill(os.getpid(), signal.SIGINT)
        time.sleep(2)  # the interrupt lands here
        return make_result(params.passed)

    (tmp_path / "params.yaml").write_text("demo_lab:\n  passed: true\n")
    monkeypatch.setenv("LABS_ROOT", str(tmp_path))
    monkeypatch.setattr("labs.common.catalogue.topic", _demo_topic)
    previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        assert lab_main("demo", "demo_lab", DemoParams, run, argv=[]) == 130
        assert signal.getsignal(signal.SIGINT) == signal.SIG_IGN  # put back afterwards
    finally:
        signal.signal(signal.SIGINT, previous)
    assert "interrupted" in capsys.readouterr().err


_EXEC_INTERRUPT_LAB = """
import os, signal, sys
from dataclasses import dataclass
from pathlib import Path

import labs.common.catalogue as catalogue
from labs.common.entry import lab_main


@dataclass(frozen=True)
class DemoParams:
    passed: bool


def run(params, out_dir, echo):
    # The interrupt lands inside code run by exec() of a string, as it does when Ctrl-C hits
    # a lazy import that builds dataclasses or namedtuples.
    exec("os.kill(os.getpid(), signal.SIGINT)\\nwhile True: pass", {"os": os, "signal": signal})


catalogue.topic = lambda topic_id: catalogue.Topic(
    topic_id, "Does the contract hold?", "It does.", "basics", "ready"
)
sys.exit(lab_main("demo", "demo_lab", DemoParams, run, argv=[]))
"""


def test_ctrl_c_inside_exec_code_still_exits_130_not_by_signal(
    tmp_path: Path, repo_root: Path
) -> None:
    """Under ``python -m``, CPython turned a caught bare KeyboardInterrupt that had left
    exec()'d code into a SIGINT death at exit (return code -2, no traceback): Ctrl-C during a
    lab's first imports failed the contract's exit code 130 now and then."""
    import os
    import subprocess
    import sys

    (tmp_path / "demo_interrupt_lab.py").write_text(_EXEC_INTERRUPT_LAB)
    (tmp_path / "params.yaml").write_text("demo_lab:\n  passed: true\n")
    env = {**os.environ, "LABS_ROOT": str(tmp_path), "PYTHONPATH": f"{repo_root}:{tmp_path}"}
    done = subprocess.run(
        [sys.executable, "-m", "demo_interrupt_lab"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 130, done.stderr[-2000:]
    assert done.stderr.strip().splitlines()[-1] == (
        "lab demo: interrupted; what it started was stopped."
    )


def test_an_interrupt_that_lands_in_a_finalizer_still_stops_the_lab(
    tmp_path: Path, monkeypatch, capsys
) -> None:
    """Python runs a signal handler wherever the main thread is — also inside ``__del__`` or a
    weakref callback, where the exception is printed ("Exception ignored") and dropped. A
    Ctrl-C of the retraining lab landed in SQLAlchemy's cleanup that way and the lab ran on to
    exit 0 (CI). The interrupt must still stop the lab, at once, without a traceback."""
    import gc
    import os
    import signal
    import time
    from dataclasses import dataclass

    from labs.common.entry import lab_main

    @dataclass(frozen=True)
    class DemoParams:
        passed: bool

    class Cleanup:
        def __del__(self) -> None:
            os.kill(os.getpid(), signal.SIGINT)
            for _ in range(200_000):  # the handler runs in here
                pass

    finished = []

    def run(params: DemoParams, out_dir: Path, echo) -> LabResult:
        Cleanup()
        gc.collect()
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:  # the lab at work
            time.sleep(0.01)
        finished.append(True)
        return make_result(params.passed)

    (tmp_path / "params.yaml").write_text("demo_lab:\n  passed: true\n")
    monkeypatch.setenv("LABS_ROOT", str(tmp_path))
    monkeypatch.setattr("labs.common.catalogue.topic", _demo_topic)
    assert lab_main("demo", "demo_lab", DemoParams, run, argv=[]) == 130
    assert not finished  # stopped in the middle of its 5 s of work, not after
    err = capsys.readouterr().err
    assert "Traceback" not in err and "Exception ignored" not in err


def test_a_librarys_error_while_it_handles_the_interrupt_is_still_an_interrupt(
    tmp_path: Path, monkeypatch, capsys
) -> None:
    """Prefect, interrupted while a task starts, raises ``ValueError: Task run is not set``
    from its crash handler; the run was stopped from outside all the same (CI: exit 1, the
    MLflow run FAILED, for a SIGTERM)."""
    import os
    import signal
    import time
    from dataclasses import dataclass

    from labs.common.entry import lab_main, stopped_from_outside

    @dataclass(frozen=True)
    class DemoParams:
        passed: bool

    errors: list[BaseException] = []

    def run(params: DemoParams, out_dir: Path, echo) -> LabResult:
        try:
            os.kill(os.getpid(), signal.SIGTERM)
            time.sleep(2)
        except BaseException:
            try:
                raise ValueError("Task run is not set")  # noqa: TRY301 - what Prefect does
            except ValueError as err:
                errors.append(err)
                raise
        return make_result(params.passed)

    (tmp_path / "params.yaml").write_text("demo_lab:\n  passed: true\n")
    monkeypatch.setenv("LABS_ROOT", str(tmp_path))
    monkeypatch.setattr("labs.common.catalogue.topic", _demo_topic)
    assert lab_main("demo", "demo_lab", DemoParams, run, argv=[]) == 130
    assert "Traceback" not in capsys.readouterr().err
    assert stopped_from_outside(errors[0])
    assert not stopped_from_outside(ValueError("a bug of our own"))


def test_the_printout_points_at_the_tracking_server_a_lab_logged_to(monkeypatch) -> None:
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "http://127.0.0.1:5123")
    text = format_summary(make_result(True))
    assert "its UI: http://127.0.0.1:5123" in text and "make mlflow-ui" not in text
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "sqlite:///mlflow.db")
    assert "`make mlflow-ui`, http://127.0.0.1:5000" in format_summary(make_result(True))


def test_a_library_handler_that_takes_the_sigterm_and_then_errs_is_still_an_interrupt() -> None:
    """Prefect's flow engine swaps in its own SIGTERM handler (raising its TerminationSignal, a
    BaseException); a SIGTERM while a task starts becomes ``ValueError: Task run is not set``
    and Prefect never calls the previous handler. The run was stopped all the same: exit 130,
    not 1 (seen in ``test_sigterm_of_a_run_leaves_no_process_and_a_killed_mlflow_run``)."""
    import os
    import signal
    import time

    from labs.common.entry import Interrupted, interrupt_on_signals

    class TerminationSignal(BaseException):  # what prefect.exceptions defines
        def __init__(self, signum: int) -> None:
            self.signal = signum

    def library_handler(signum: int, frame: object) -> None:
        raise TerminationSignal(signum)

    with pytest.raises(Interrupted) as caught, interrupt_on_signals():
        previous = signal.signal(signal.SIGTERM, library_handler)
        try:
            try:
                os.kill(os.getpid(), signal.SIGTERM)
                time.sleep(2)
            except TerminationSignal:
                raise ValueError("Task run is not set")  # noqa: B904 - what Prefect does
        finally:
            signal.signal(signal.SIGTERM, previous)
    assert isinstance(caught.value.__cause__, ValueError)
    with pytest.raises(ValueError, match="a bug of our own"), interrupt_on_signals():
        raise ValueError("a bug of our own")
