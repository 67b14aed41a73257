"""Lab explainability: every claim asserted from its numbers on small parameters, plus the cases
where nothing may be found (honest columns are not flagged as leaky, the noise code is not
important under permutation, no leak planted → nothing flagged)."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from labs.common.catalogue import topic
from labs.common.data import FEATURES, TARGET, churn_probability, make_churn_data
from labs.common.plots import read_drawing
from labs.common.results import LabResult, finish, read_summary
from labs.explainability import explain as ex
from labs.explainability.lab import ExplainabilityParams, run
from labs.explainability.report import GLOBAL_TITLE

SMALL = ExplainabilityParams(
    train_rows=3000,
    holdout_rows=2500,
    n_estimators=30,
    shap_rows=100,
    bias_rows_per_group=30,
    permutation_rows=1000,
    permutation_repeats=3,
    version_check_rows=10,
)
CLAIMS = [
    "shap_mapped_to_raw_columns",
    "strongest_driver_first",
    "local_explanation",
    "permutation_agrees_with_shap",
    "mdi_misleads_on_noise",
    "leak_dominates_and_flagged",
    "explanation_versioned_with_model",
    "bias_gap_explained",
]
DRIVERS = ["contract", "tenure_months", "monthly_charges", "support_calls"]


def measured(result: LabResult, claim: str) -> dict:
    return dict(result.claim(claim).measured)


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> LabResult:
    return run(SMALL, tmp_path_factory.mktemp("explainability"))


# --- the claims, from their numbers ------------------------------------------------------


def test_shap_values_are_mapped_to_their_own_columns(lab: LabResult) -> None:
    m = measured(lab, "shap_mapped_to_raw_columns")
    assert m["rows_explained"] == 2 * SMALL.shap_rows
    assert m["max_abs_error"] < 1e-9
    # 4 numbers + the noise code pass through, 3 + 4 + 3 one-hot columns → 8 raw columns
    assert m["transformed_columns"] == 15 and m["raw_columns"] == 8
    assert m["min_eta2"] >= SMALL.mapping_share_min
    assert m["eta2.leaky.retention_calls"] > 0.75 and m["eta2.honest.contract"] > 0.75


def test_names_in_frame_order_mix_columns_up_and_still_add_up() -> None:
    """Counterfactual ``names-in-frame-order``, through the lab's explain-and-check path: the
    contributions still add up (the old ``shap_additive`` claim held under it), but the
    leak's and contract's values no longer belong to them, so the mapping claim fails."""
    from labs.explainability.counterfactuals import owners_in_frame_order
    from labs.explainability.lab import Parts, _mapping_check

    train, holdout = ex.make_frames(2000, 500, SMALL.seed, 1000, 3.0, 0.2)
    rows = holdout.head(100)
    models, broken = {}, Parts(owners_of=owners_in_frame_order)
    for name, leaky in (("honest", False), ("leaky", True)):
        columns = ex.columns_for(leaky)
        model = ex.build_forest(columns, 20, 10, 0).fit(train[columns], train[TARGET])
        models[name] = {"shap": broken.explain(model, rows, columns)}
        assert models[name]["shap"].additivity_error.max() < 1e-9  # additivity cannot tell
    mixed = _mapping_check(rows, models)
    assert mixed["leaky.retention_calls"] < SMALL.mapping_share_min
    assert mixed["leaky.contract"] < SMALL.mapping_share_min
    assert mixed["honest.tenure_months"] > 0.75  # the numbers before the categories are right


def test_the_true_strongest_driver_ranks_first(lab: LabResult) -> None:
    m = measured(lab, "strongest_driver_first")
    assert m["true_strongest"] == m["shap_first"] == "contract"
    assert m["true_top_k"] == DRIVERS and sorted(m["shap_top_k"]) == sorted(DRIVERS)
    # the generator gives age and the noise code no weight at all
    assert m["true_age"] == 0.0 and m["true_customer_code"] == 0.0
    assert m["true_contract"] > m["true_tenure_months"] > m["true_support_calls"] > 0
    assert m["spearman_shap_vs_truth"] > 0.8


def test_local_explanation_adds_up_and_agrees_with_the_truth(lab: LabResult) -> None:
    m = measured(lab, "local_explanation")
    assert m["abs_error"] < 1e-9
    assert m["output"] > SMALL.threshold > m["base_value"]
    assert m["top3_signs_agree"] == 3
    shap_terms = {k[5:]: v for k, v in m.items() if k.startswith("shap_")}
    for column, value in shap_terms.items():
        assert np.sign(value) == np.sign(m[f"true_logodds_{column}"])


def test_permutation_agrees_with_shap(lab: LabResult) -> None:
    m = measured(lab, "permutation_agrees_with_shap")
    assert set(m["permutation_top_k"]) == set(m["shap_top_k"]) == set(DRIVERS)
    assert m["spearman_permutation_vs_truth"] > 0.8


def test_mdi_ranks_noise_high_permutation_does_not(lab: LabResult) -> None:
    m = measured(lab, "mdi_misleads_on_noise")
    assert m["noise_mdi_rank"] <= 5 and m["drivers_below_noise_under_mdi"]
    assert m["noise_mdi_share"] > 0.05
    # Negative side: the noise code is not important under holdout permutation.
    assert abs(m["noise_permutation_auc_drop"]) <= SMALL.noise_permutation_max
    assert m["noise_permutation_rank"] > len(DRIVERS)


def test_leak_dominates_and_only_the_leak_is_flagged(lab: LabResult) -> None:
    m = measured(lab, "leak_dominates_and_flagged")
    for method in ("shap", "permutation", "mdi"):
        assert m[f"first_under_{method}"] == ex.LEAK
    assert m["leak_share_shap"] >= SMALL.leak_share_alert
    assert m["leak_single_column_auc"] >= SMALL.leak_auc_alert
    assert m["flagged_leaky_model"] == [ex.LEAK]
    # Negative side: the honest model's strongest column is a real driver, not a leak.
    assert m["flagged_honest_model"] == []
    assert m["honest_top_column"] == "contract"
    assert m["honest_top_share"] < SMALL.leak_share_alert
    assert m["honest_max_single_column_auc"] < SMALL.leak_auc_alert


def test_explanations_are_logged_with_their_model(lab: LabResult) -> None:
    import mlflow
    import mlflow.artifacts

    from labs.common.tracking import file_sha256, logged_model_file

    m = measured(lab, "explanation_versioned_with_model")
    assert m["honest_sha_matches"] and m["leaky_sha_matches"]
    assert m["honest_recomputed_max_abs_diff"] == m["leaky_recomputed_max_abs_diff"] == 0.0
    assert (m["honest_top"], m["leaky_top"]) == ("contract", ex.LEAK)
    run_info = mlflow.get_run(lab.mlflow["run_id"]).info
    for name in ("honest", "leaky"):
        logged = mlflow.artifacts.load_dict(f"{run_info.artifact_uri}/explanations/{name}.json")
        assert logged["model_uri"] == lab.mlflow[f"{name}_model_uri"]
        assert logged["model_sha256"] == file_sha256(logged_model_file(logged["model_uri"]))
        values = np.asarray(logged["values"])
        assert values.shape == (SMALL.shap_rows, len(logged["columns"]))
        assert (ex.LEAK in logged["columns"]) == (name == "leaky")


def test_bias_gap_is_measured_and_explained(lab: LabResult) -> None:
    m = measured(lab, "bias_gap_explained")
    assert m["recall_month-to-month"] - m["recall_two-year"] == pytest.approx(m["recall_gap"])
    assert m["recall_gap"] >= SMALL.recall_gap_min and m["churners_two-year"] >= 5
    gaps = {k: v for k, v in m.items() if k.startswith("gap_from_")}
    assert sum(gaps.values()) == pytest.approx(m["p_gap"], abs=1e-9)
    assert max(gaps, key=gaps.get) == "gap_from_contract"
    assert m["contract_share_of_gap"] >= SMALL.bias_share_min


def test_summary_follows_the_contract(lab: LabResult, tmp_path: Path, capsys) -> None:
    assert lab.passed, [c.id for c in lab.claims if not c.passed]
    assert finish(lab, tmp_path) == 0
    summary = read_summary(tmp_path / "summary.json")
    assert summary.lab == "explainability" and summary.passed
    assert summary.question == topic("explainability").question
    assert [c.id for c in summary.claims] == CLAIMS
    assert summary.mlflow["experiment"] == "lab-explainability"
    assert "✓ leak_dominates_and_flagged" in capsys.readouterr().out


def test_plots_show_the_measured_importances(lab: LabResult) -> None:
    pngs = {Path(a).name: Path(a) for a in lab.artifacts if a.endswith(".png")}
    (axis,) = read_drawing(pngs["global_importance.png"])["axes"]
    assert axis["title"] == GLOBAL_TITLE
    columns = axis["xticklabels"]
    bars = {b["label"]: dict(zip(columns, b["heights"], strict=True)) for b in axis["bars"]}
    mdi, perm = bars["MDI (impurity)"], bars["permutation ΔAUC (holdout)"]
    noise = measured(lab, "mdi_misleads_on_noise")
    assert mdi[ex.NOISE] == pytest.approx(noise["noise_mdi_share"])
    assert perm[ex.NOISE] < 0.02 < mdi[ex.NOISE]
    assert any("pure noise" in t for t in axis["texts"])

    (local_axis,) = read_drawing(pngs["local_explanation.png"])["axes"]
    local = measured(lab, "local_explanation")
    (bars,) = local_axis["bars"]
    base = next(line for line in local_axis["lines"] if line["label"].startswith("base"))
    assert base["y"][0] == pytest.approx(local["base_value"])
    assert local["base_value"] + sum(bars["heights"]) == pytest.approx(local["output"])
    top = local_axis["xticklabels"][0].split(" = ")[0]  # "contract = month-to-month"
    assert bars["heights"][0] == pytest.approx(local[f"shap_{top}"])


# --- the parts, on small hand-checkable inputs ---------------------------------------------


def test_true_contributions_are_the_generator_log_odds() -> None:
    rows = make_churn_data(300, seed=2)
    truth = ex.true_contributions(rows)
    p = churn_probability(rows)
    logit = np.log(p / (1 - p))
    np.testing.assert_allclose(truth.sum(axis=1), logit - logit.mean(), atol=1e-9)
    assert (truth["age"] == 0).all()
    assert list(truth.columns) == list(FEATURES)


def test_no_planted_leak_means_nothing_flagged() -> None:
    # Negative case: retention calls drawn the same for churners and stayers carry no label.
    train, holdout = ex.make_frames(1500, 600, 3, 200, 0.5, 0.5)
    columns = ex.columns_for(leaky=True)
    model = ex.build_forest(columns, 15, 6, 0).fit(train[columns], train[TARGET])
    exp = ex.shap_explain(model, holdout.head(60), columns)
    assert exp.additivity_error.max() < 1e-9
    aucs = {c: ex.single_feature_auc(train, holdout, c) for c in columns}
    assert aucs[ex.LEAK] < 0.6
    assert ex.leak_check(ex.shares(exp.global_importance()), aucs, 0.5, 0.9) == []
    assert ex.original_columns(model).count("contract") == 3


def test_leak_check_needs_both_signals() -> None:
    shares = {"a": 0.7, "b": 0.3}
    assert ex.leak_check(shares, {"a": 0.95, "b": 0.99}, 0.5, 0.9) == ["a"]
    assert ex.leak_check(shares, {"a": 0.8, "b": 0.99}, 0.5, 0.9) == []


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"shap_rows": 5}, r"explainability\.shap_rows must be >= 20"),
        ({"top_k": 8}, r"explainability\.top_k"),
        ({"permutation_rows": 5000}, r"explainability\.permutation_rows"),
        ({"leak_auc_alert": 1.0}, r"explainability\.leak_auc_alert"),
    ],
)
def test_bad_params_are_refused(change: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        replace(SMALL, **change)


def test_params_yaml_section_is_complete() -> None:
    from labs.common.params import params_for

    assert isinstance(params_for(ExplainabilityParams, "explainability"), ExplainabilityParams)
