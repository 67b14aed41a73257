"""The explainability lab's claims, each decided by the numbers the lab measured."""

from __future__ import annotations

from typing import Any

import numpy as np

from labs.common.results import Claim
from labs.explainability import explain as ex


def make_claims(
    params: Any,
    models: dict[str, dict[str, Any]],
    truth: dict[str, float],
    local: dict[str, Any],
    bias: dict[str, Any],
    recall_rows: list[dict[str, Any]],
    versioning: dict[str, dict[str, Any]],
    mapping: dict[str, float],
) -> list[Claim]:
    """The interview answer, claim by claim."""
    honest, leaky = models["honest"], models["leaky"]
    k = params.top_k
    shap_rank = ex.ranking(honest["shap_importance"])
    perm = {c: v["mean"] for c, v in honest["permutation"].items()}
    perm_rank = ex.ranking(perm)
    mdi_rank = ex.ranking(honest["mdi"])
    true_rank = ex.ranking(truth)
    drivers = [c for c in true_rank if truth[c] > 0]  # the generator's real causes

    errors = np.concatenate([m["shap"].additivity_error for m in models.values()])
    local_order = sorted(local["values"], key=lambda c: -abs(local["values"][c]))[:3]
    local_signs = {
        c: bool(np.sign(local["values"][c]) == np.sign(local["truth"][c])) for c in local_order
    }
    local_err = abs(local["base_value"] + sum(local["values"].values()) - local["output"])

    noise_mdi_rank = mdi_rank.index(ex.NOISE) + 1
    drivers_below_noise_mdi = [c for c in drivers if honest["mdi"][c] < honest["mdi"][ex.NOISE]]
    noise_perm = honest["permutation"][ex.NOISE]

    leak_first = {
        "shap": ex.ranking(leaky["shap_importance"])[0],
        "permutation": ex.ranking({c: v["mean"] for c, v in leaky["permutation"].items()})[0],
        "mdi": ex.ranking(leaky["mdi"])[0],
    }
    leak_shares = {
        "shap": ex.shares(leaky["shap_importance"])[ex.LEAK],
        "permutation": ex.shares({c: v["mean"] for c, v in leaky["permutation"].items()})[ex.LEAK],
        "mdi": ex.shares(leaky["mdi"])[ex.LEAK],
    }
    honest_shares = ex.shares(honest["shap_importance"])
    honest_top = shap_rank[0]

    before = ex.shares(versioning["honest"]["global_importance"])
    after = ex.shares(versioning["leaky"]["global_importance"])
    shift = sum(abs(after.get(c, 0.0) - before.get(c, 0.0)) for c in set(before) | set(after))

    # A group without churners has no recall (None): then the claim cannot pass.
    recall = {r["group"]: r["recall"] if r["churners"] else None for r in recall_rows}
    low, high = recall["two-year"], recall["month-to-month"]
    recall_gap = high - low if low is not None and high is not None else float("nan")
    gap = bias["output_gap"]
    contract_share = bias["gap_by_column"]["contract"] / gap if gap else 0.0
    gap_sum_err = abs(sum(bias["gap_by_column"].values()) - gap)

    return [
        Claim(
            "shap_mapped_to_raw_columns",
            "Our mapping of tree SHAP values through the Pipeline back to raw columns is right: "
            "for both models, base value + the mapped contributions = the pipeline's own "
            f"P(churn) on the raw row (|error| < {params.additivity_tol:g}), and every true "
            "driver's (and the leak's) mapped values are explained by that column's own value "
            f"(η² ≥ {params.mapping_share_min:g}, a bound set on seeds 101–103: right mapping "
            "≥ 0.75 for every checked column, names in the input frame's order ≤ 0.25 for "
            "the leak).",
            passed=bool(errors.max() < params.additivity_tol)
            and min(mapping.values()) >= params.mapping_share_min,
            measured={
                "rows_explained": int(errors.size),
                "max_abs_error": float(errors.max()),
                "transformed_columns": honest["shap"].n_transformed,
                "raw_columns": len(honest["columns"]),
                "min_eta2": min(mapping.values()),
                "min_eta2_column": min(mapping, key=mapping.get),
                **{f"eta2.{k}": v for k, v in mapping.items()},
            },
        ),
        Claim(
            "strongest_driver_first",
            "SHAP ranks the generator's strongest true driver first, and its top "
            f"{k} columns are the true top {k}.",
            passed=shap_rank[0] == true_rank[0] and set(shap_rank[:k]) == set(true_rank[:k]),
            measured={
                "true_strongest": true_rank[0],
                "shap_first": shap_rank[0],
                "true_top_k": true_rank[:k],
                "shap_top_k": shap_rank[:k],
                "spearman_shap_vs_truth": ex.spearman(honest["shap_importance"], truth),
                **{f"true_{c}": truth[c] for c in true_rank},
            },
        ),
        Claim(
            "local_explanation",
            "One customer's explanation (a waterfall) adds up to their P(churn), and its three "
            "largest contributions point the same way as the generator's true contributions.",
            passed=local_err < params.additivity_tol and all(local_signs.values()),
            measured={
                "customer": local["customer"],
                "churned": local["churned"],
                "base_value": local["base_value"],
                "output": local["output"],
                "abs_error": float(local_err),
                **{f"shap_{c}": local["values"][c] for c in local_order},
                **{f"true_logodds_{c}": float(local["truth"][c]) for c in local_order},
                "top3_signs_agree": int(sum(local_signs.values())),
            },
        ),
        Claim(
            "permutation_agrees_with_shap",
            f"Permutation importance on the holdout has the same top {k} columns as SHAP (and the "
            "truth).",
            passed=set(perm_rank[:k]) == set(shap_rank[:k]) == set(true_rank[:k]),
            measured={
                "permutation_top_k": perm_rank[:k],
                "shap_top_k": shap_rank[:k],
                "spearman_permutation_vs_shap": ex.spearman(perm, honest["shap_importance"]),
                "spearman_permutation_vs_truth": ex.spearman(perm, truth),
            },
        ),
        Claim(
            "mdi_misleads_on_noise",
            f"Impurity (MDI) importance ranks the pure-noise {ex.NOISE} (cardinality "
            f"{params.noise_cardinality}) above real drivers; on the holdout, permutation puts "
            f"it at ≈ 0 (|ΔAUC| ≤ {params.noise_permutation_max:g}), below every real driver.",
            passed=len(drivers_below_noise_mdi) >= 1
            and abs(noise_perm["mean"]) <= params.noise_permutation_max
            and all(perm[c] > perm[ex.NOISE] for c in true_rank[:k]),
            measured={
                "noise_mdi_rank": noise_mdi_rank,
                "noise_mdi_share": ex.shares(honest["mdi"])[ex.NOISE],
                "drivers_below_noise_under_mdi": drivers_below_noise_mdi,
                "noise_permutation_auc_drop": noise_perm["mean"],
                "noise_permutation_std": noise_perm["std"],
                "noise_permutation_rank": perm_rank.index(ex.NOISE) + 1,
                "noise_shap_share": honest_shares[ex.NOISE],
                "columns": len(honest["columns"]),
            },
        ),
        Claim(
            "leak_dominates_and_flagged",
            f"The planted leak {ex.LEAK} ranks first under SHAP, permutation and MDI, and the "
            f"leak check (≥ {params.leak_share_alert:.0%} of SHAP attribution and single-column "
            f"AUC ≥ {params.leak_auc_alert:g}) flags exactly it — and nothing in the honest model.",
            passed=set(leak_first.values()) == {ex.LEAK}
            and leaky["flagged"] == [ex.LEAK]
            and honest["flagged"] == [],
            measured={
                **{f"first_under_{m}": c for m, c in leak_first.items()},
                **{f"leak_share_{m}": v for m, v in leak_shares.items()},
                "leak_single_column_auc": leaky["single_auc"][ex.LEAK],
                "flagged_leaky_model": leaky["flagged"],
                "flagged_honest_model": honest["flagged"],
                "honest_top_column": honest_top,
                "honest_top_share": honest_shares[honest_top],
                "honest_top_single_column_auc": honest["single_auc"][honest_top],
                "honest_max_single_column_auc": max(honest["single_auc"].values()),
            },
        ),
        Claim(
            "explanation_versioned_with_model",
            "Each model's explanation is logged in its MLflow run beside the model and names the "
            "model file's sha256; the model loaded back from MLflow reproduces it exactly; "
            "the leaky model's explanation differs from the honest one's.",
            passed=all(v["sha_matches"] for v in versioning.values())
            and all(v["recomputed_max_abs_diff"] <= 1e-12 for v in versioning.values())
            and ex.ranking(after)[0] != ex.ranking(before)[0]
            and shift > 0.5,
            measured={
                **{f"{n}_sha_matches": v["sha_matches"] for n, v in versioning.items()},
                **{
                    f"{n}_recomputed_max_abs_diff": v["recomputed_max_abs_diff"]
                    for n, v in versioning.items()
                },
                "honest_top": ex.ranking(before)[0],
                "leaky_top": ex.ranking(after)[0],
                "share_shift_l1": shift,
            },
        ),
        Claim(
            "bias_gap_explained",
            "Recall differs by contract type: the model catches far fewer churners on two-year "
            f"contracts (gap ≥ {params.recall_gap_min:g}); SHAP splits the gap in their mean "
            "P(churn) exactly by column, and the contract column explains at least "
            f"{params.bias_share_min:.0%} of it.",
            passed=bool(recall_gap >= params.recall_gap_min)
            and contract_share >= params.bias_share_min
            and gap_sum_err < params.additivity_tol,
            measured={
                **{f"recall_{g}": v for g, v in recall.items()},
                **{f"churners_{r['group']}": r["churners"] for r in recall_rows},
                "recall_gap": recall_gap if np.isfinite(recall_gap) else None,
                **{f"explained_churners_{g}": n for g, n in bias["rows"].items()},
                "mean_p_month_to_month": bias["mean_output"]["month-to-month"],
                "mean_p_two_year": bias["mean_output"]["two-year"],
                "p_gap": gap,
                **{f"gap_from_{c}": v for c, v in bias["gap_by_column"].items()},
                "contract_share_of_gap": contract_share,
                "decomposition_error": gap_sum_err,
            },
        ),
    ]
