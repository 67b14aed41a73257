"""Lab packaging: parity, refusal and orderings of counted work asserted from the numbers
(never times: the timing goals are checked by ``benchmarks/bench_packaging.py``, which exits
non-zero on a miss), plus the project's Dockerfile checked against the lock — and the checks
themselves shown to fail on a bad Dockerfile."""

from __future__ import annotations

from pathlib import Path

import pytest

from labs.common.catalogue import topic
from labs.common.plots import read_drawing
from labs.common.results import LabResult, finish, read_summary
from labs.packaging.container import (
    SERVING_STACK,
    check_dockerfile,
    lock_pins,
    parse_dockerfile,
    render_dockerfile,
)
from labs.packaging.counterfactuals import COUNTERFACTUALS
from labs.packaging.lab import PackagingParams, run

REPO = Path(__file__).resolve().parents[2]
# Small and quick: the fresh processes dominate, two at a time (orderings are ~10× apart).
SMALL = PackagingParams(
    train_rows=1000,
    parity_rows=1000,
    batch_rows=200,
    one_row_repeats=5,
    batch_repeats=2,
    forest_trees=20,
    parallel_probes=2,
)
CLAIMS = [
    "every_package_predicts_the_same",
    "float32_trees_differ_a_little",
    "onnx_loads_and_scores_fastest",
    "pickle_runs_planted_code",
    "skops_refuses_planted_code",
    "onnx_carries_no_code",
    "rest_app_serves_the_same_model",
    "serverless_cold_start_dominates",
    "own_dockerfile_is_reviewable",
]


def measured(result: LabResult, claim: str) -> dict:
    return dict(result.claim(claim).measured)


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> LabResult:
    return run(SMALL, tmp_path_factory.mktemp("packaging"))


# --- parity ------------------------------------------------------------------------------


def test_sklearn_packages_are_bit_identical_and_onnx_is_float32_close(lab: LabResult) -> None:
    m = measured(lab, "every_package_predicts_the_same")
    assert m["rows"] == SMALL.parity_rows
    for fmt in ("pickle", "skops", "pyfunc"):
        assert m[f"max_abs_dp_{fmt}"] == 0.0 and m[f"label_flips_{fmt}"] == 0
    # float32 arithmetic: not zero, but at float32 rounding for a linear model
    assert 0.0 < m["max_abs_dp_onnx"] <= SMALL.onnx_linear_tolerance
    assert m["label_flips_onnx"] == 0


def test_tree_ensemble_through_onnx_differs_but_rarely_flips(lab: LabResult) -> None:
    m = measured(lab, "float32_trees_differ_a_little")
    assert m["forest_max_abs_dp"] > 1e-4
    assert m["forest_max_abs_dp"] > 100 * m["linear_max_abs_dp"]
    assert m["forest_label_flips"] <= SMALL.tree_flip_share_limit * m["rows"]


# --- safety ------------------------------------------------------------------------------


def test_pickle_runs_the_payload_and_still_predicts(lab: LabResult) -> None:
    m = measured(lab, "pickle_runs_planted_code")
    assert m["payload_ran"] is True and m["refused"] is False
    assert m["max_abs_dp_vs_clean"] == 0.0


def test_skops_refuses_the_same_intent_unless_everything_is_trusted(lab: LabResult) -> None:
    m = measured(lab, "skops_refuses_planted_code")
    assert m["refused"] is True and m["payload_ran"] is False
    assert m["asked_types"] == ["builtins.exec"]
    assert "UntrustedModelError" in m["error"] and "builtins.exec" in m["error"]
    # the negative side: the refusal comes from the allowlist, not from the format
    assert m["trust_all_payload_ran"] is True


def test_onnx_holds_the_payload_only_as_inert_data(lab: LabResult) -> None:
    m = measured(lab, "onnx_carries_no_code")
    assert m["payload_ran"] is False and m["max_abs_dp_vs_clean"] == 0.0
    assert m["local_functions"] == 0
    assert set(m["domains"]) <= {"ai.onnx", "ai.onnx.ml"}
    assert "on_load" in m["metadata_keys"]


# --- orderings of counted work (the timings behind them are the benchmark's goals) ----------

TIMED = {"onnx_loads_and_scores_fastest", "serverless_cold_start_dominates"}


def test_onnx_loads_less_than_the_sklearn_packages(lab: LabResult) -> None:
    m = measured(lab, "onnx_loads_and_scores_fastest")
    for fmt in ("pickle", "skops", "pyfunc"):
        # a fresh process imports fewer modules to load ONNX, and the file is smaller
        assert m["modules_at_load_onnx"] < m[f"modules_at_load_{fmt}"]
        assert m["size_bytes_onnx"] < m[f"size_bytes_{fmt}"]
    # MLflow's pyfunc loader imports the most: MLflow on top of scikit-learn and skops
    assert m["modules_at_load_pyfunc"] > max(
        m["modules_at_load_pickle"], m["modules_at_load_skops"]
    )


def test_rest_app_answers_with_the_model_and_batches_in_one_call(lab: LabResult) -> None:
    m = measured(lab, "rest_app_serves_the_same_model")
    assert m["parity_max_abs_dp"] <= 1e-9 and m["parity_label_flips"] == 0
    assert m["parity_rows"] == m["batch_rows"] == SMALL.batch_rows


def test_handler_builds_the_app_once_and_answers_with_the_model(lab: LabResult) -> None:
    m = measured(lab, "serverless_cold_start_dominates")
    for kind in ("sklearn", "onnx"):
        # the cold start's work is done once: one app built for every call of the process
        assert m[f"app_builds_{kind}"] == 1
        assert m[f"calls_{kind}"] == 2 + SMALL.one_row_repeats + SMALL.batch_repeats
    assert m["max_abs_dp_sklearn"] <= 1e-9 and m["max_abs_dp_onnx"] <= SMALL.onnx_linear_tolerance


def test_mlflow_context_and_our_dockerfile_compared(lab: LabResult) -> None:
    m = measured(lab, "own_dockerfile_is_reviewable")
    assert m["mlflow_final_user"] == "root" and m["mlflow_healthcheck"] is False
    assert m["mlflow_unpinned_installs"] > 0
    assert m["mlflow_requirements_pinned"] == m["mlflow_requirements"] > 0
    assert m["ours_final_user"] == "serving" and m["ours_healthcheck"] is True
    assert m["ours_unpinned_installs"] == 0 and m["ours_pins_not_in_lock"] == 0
    assert m["committed_matches_lock"] is True


# --- the contract, the table, the plot -----------------------------------------------------


def test_summary_follows_the_contract(lab: LabResult, tmp_path: Path, capsys) -> None:
    assert not [c.id for c in lab.claims if not c.passed and c.id not in TIMED]
    assert finish(lab, tmp_path) == int(not lab.passed)
    summary = read_summary(tmp_path / "summary.json")
    assert summary.lab == "packaging" and summary.passed
    assert summary.question == topic("packaging").question
    assert [c.id for c in summary.claims] == CLAIMS
    assert summary.mlflow["experiment"] == "lab-packaging" and summary.mlflow["run_id"]
    assert "✓ skops_refuses_planted_code" in capsys.readouterr().out


def test_table_and_plot_show_the_measured_numbers(lab: LabResult) -> None:
    table = Path(next(a for a in lab.artifacts if a.endswith("packages.md"))).read_text()
    for name in ("pickle/joblib", "skops", "onnx", "mlflow-pyfunc", "REST serving app"):
        assert f"| {name} " in table
    assert f"0/{SMALL.parity_rows}" in table
    drawn = read_drawing(Path(next(a for a in lab.artifacts if a.endswith(".png"))))
    load_ax, latency_ax, parity_ax = drawn["axes"]
    names = load_ax["xticklabels"]
    loads = load_ax["bars"][0]["heights"]
    m = measured(lab, "onnx_loads_and_scores_fastest")
    assert loads[names.index("onnx")] == pytest.approx(m["load_s_onnx"])
    assert latency_ax["yscale"] == "log" and parity_ax["yscale"] == "log"
    forest = measured(lab, "float32_trees_differ_a_little")["forest_max_abs_dp"]
    assert max(parity_ax["bars"][0]["heights"]) == pytest.approx(forest)
    assert "exact" in parity_ax["texts"]


# --- the Dockerfile, without the lab ---------------------------------------------------------


def test_committed_dockerfile_is_rendered_from_the_lock() -> None:
    lock = (REPO / "requirements.lock").read_text()
    committed = (REPO / "labs" / "packaging" / "Dockerfile").read_text()
    assert committed == render_dockerfile(lock)
    steps = parse_dockerfile(committed)
    assert steps[0].keyword == "FROM"
    checked = check_dockerfile(committed, lock)
    assert checked["runs_as_root"] is False and checked["healthcheck"] is True
    assert checked["installs_from_lock_with_hashes"] and checked["unpinned_installs"] == []
    pins = lock_pins(lock)
    label = next(s.args for s in steps if s.keyword == "LABEL")
    for name in SERVING_STACK:  # every serving package the label names, at the locked version
        (version,) = pins[name]
        assert f"{name}=={version}" in label
    assert "--host 0.0.0.0" in checked["entrypoint"]


def test_the_checks_catch_a_bad_dockerfile() -> None:
    lock = (REPO / "requirements.lock").read_text()
    good = render_dockerfile(lock)
    as_root = good.replace("USER serving\n", "")
    assert check_dockerfile(as_root, lock)["runs_as_root"] is True
    no_health = "\n".join(line for line in good.splitlines() if "HEALTHCHECK" not in line and
                          "CMD [\"python\"" not in line)  # fmt: skip
    assert check_dockerfile(no_health, lock)["healthcheck"] is False
    drifted = good.replace("fastapi==0.150.0", "fastapi==0.99.0")
    assert check_dockerfile(drifted, lock)["pins_not_in_lock"] == ["fastapi==0.99.0"]
    loose = good.replace("--require-hashes -r /app/requirements.lock", "fastapi uvicorn")
    checked = check_dockerfile(loose, lock)
    assert not checked["installs_from_lock_with_hashes"]
    assert checked["unpinned_installs"] == ["pip:fastapi", "pip:uvicorn"]
    with pytest.raises(ValueError, match="unknown instruction"):
        parse_dockerfile("FROM python:3.11\nRUNN echo hi\n")
    with pytest.raises(ValueError):
        parse_dockerfile('FROM python:3.11\nCMD ["python", "-c"\n')


# --- a counterfactual through the lab -------------------------------------------------------


@pytest.fixture(scope="module")
def shortcuts(tmp_path_factory: pytest.TempPathFactory) -> LabResult:
    cf = COUNTERFACTUALS.get("serving-shortcuts")
    return COUNTERFACTUALS.run_with(cf, SMALL, tmp_path_factory.mktemp("packaging-cf"))


@pytest.mark.counterfactual
def test_serving_shortcuts_are_caught_by_counted_work_and_parity(shortcuts: LabResult) -> None:
    # a handler that builds the app inside the function builds it on every call; its warm
    # calls stay far cheaper than the cold one (the imports are done), so only the count
    # shows it
    m = measured(shortcuts, "serverless_cold_start_dominates")
    for kind in ("sklearn", "onnx"):
        assert m[f"app_builds_{kind}"] == m[f"calls_{kind}"] > 1
    assert not shortcuts.claim("serverless_cold_start_dominates").passed
    rest = measured(shortcuts, "rest_app_serves_the_same_model")
    assert rest["parity_max_abs_dp"] > 1e-3  # a model retrained at start-up is another model
    assert not shortcuts.claim("rest_app_serves_the_same_model").passed
    docker = measured(shortcuts, "own_dockerfile_is_reviewable")
    assert docker["ours_final_user"] == "root" and docker["ours_healthcheck"] is False
    assert docker["ours_unpinned_installs"] > 0 and docker["committed_matches_lock"] is False
    assert not shortcuts.claim("own_dockerfile_is_reviewable").passed
