"""The features lab's claims, each decided by the numbers the lab measured."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from labs.common.data import FEATURES
from labs.common.results import Claim
from labs.features.pipeline import MISTAKES, SkewResult

if TYPE_CHECKING:
    from labs.features.lab import FeaturesParams

# Float rounding between batch sizes; a real mismatch is ≥ 1e-6. Fixed before measuring.
ROUNDING = 1e-12


def make_claims(
    params: FeaturesParams,
    artefact: dict[str, Any],
    skew: dict[str, SkewResult],
    features_skew: dict[str, Any],
    pit: dict[str, dict[str, Any]],
) -> list[Claim]:
    """The interview answer, claim by claim."""
    hand, served, faithful = (
        skew["handwritten"],
        skew["shipped_pipeline"],
        skew["faithful_handwritten"],
    )
    naive, asof = pit["naive_join"], pit["asof_join"]
    dp = artefact["fresh_process_vs_trained_max_abs_dp"]
    return [
        Claim(
            "one_fitted_artefact",
            "Imputation, scaling, one-hot encoding, the ratio feature and the classifier are one "
            f"fitted object, logged to MLflow as one skops file: loaded in a fresh process, it "
            f"takes the {len(FEATURES)} raw columns and predicts exactly (|Δp| = 0) what the "
            "trained pipeline predicts.",
            passed=artefact["takes_the_raw_columns"]
            and artefact["loaded_in_another_process"]
            and dp is not None
            and dp == 0.0,
            measured=artefact,
        ),
        Claim(
            "handwritten_transform_skews",
            "A hand re-implemented serving transform (batch statistics, another category order, "
            f"missing → 0) flips ≥ {params.skew_flip_alert:.0%} of labels and loses ≥ "
            f"{params.skew_auc_alert:g} ROC-AUC on the holdout; each mistake alone flips labels.",
            passed=hand.flipped_share >= params.skew_flip_alert
            and hand.auc_loss >= params.skew_auc_alert
            and all(skew[f"only_{m}"].flipped_rows > 0 for m in MISTAKES),
            measured={
                "flipped_share": hand.flipped_share,
                "flipped_rows": hand.flipped_rows,
                "max_abs_dp": hand.max_abs_dp,
                "roc_auc_offline": artefact["holdout_roc_auc"],
                "roc_auc_served": hand.roc_auc,
                "auc_loss": hand.auc_loss,
                **{f"flipped_share_only_{m}": skew[f"only_{m}"].flipped_share for m in MISTAKES},
                **{f"max_abs_dp_only_{m}": skew[f"only_{m}"].max_abs_dp for m in MISTAKES},
            },
        ),
        Claim(
            "shipped_pipeline_no_skew",
            f"Requests of {params.serving_batch_rows} rows served by a separate serving process "
            "(the model's skops file, from MLflow) use the offline features on every row (|Δ| ≤ "
            f"{ROUNDING:g}) and give 0 flipped labels, no ROC-AUC loss, |Δp| ≤ {ROUNDING:g}.",
            passed=features_skew["serving_process"]
            and features_skew["rows_with_feature_skew"] == 0
            and served.flipped_rows == 0
            and served.auc_loss == 0.0
            and served.max_abs_dp <= ROUNDING,
            measured={
                **features_skew,
                "flipped_rows": served.flipped_rows,
                "max_abs_dp": served.max_abs_dp,
                "auc_loss": served.auc_loss,
                # for reference, not decided: a faithful hand-written copy, scored in-process
                "faithful_handwritten_flipped_rows": faithful.flipped_rows,
                "faithful_handwritten_max_abs_dp": faithful.max_abs_dp,
            },
        ),
        Claim(
            "naive_join_leaks_future",
            "Features from a plain join of the call log count calls made after the decision "
            f"date: offline ROC-AUC is inflated and falls by > {params.pit_leak_alert:g} in "
            "production, below the honest model's.",
            passed=naive["future_calls_counted"] > 0
            and naive["gap"] > params.pit_leak_alert
            and naive["offline_roc_auc"] > asof["offline_roc_auc"]
            and naive["production_roc_auc"] < asof["production_roc_auc"],
            measured={
                "future_calls_counted": naive["future_calls_counted"],
                "future_call_share": naive["future_call_share"],
                "offline_roc_auc": naive["offline_roc_auc"],
                "production_roc_auc": naive["production_roc_auc"],
                "gap": naive["gap"],
                "honest_offline_roc_auc": asof["offline_roc_auc"],
            },
        ),
        Claim(
            "asof_join_honest",
            "An as-of join (pandas.merge_asof) uses no future call, gives every training row the "
            "value production would have seen, and offline ROC-AUC within "
            f"{params.pit_honest_gap:g} of production's.",
            passed=asof["future_calls_counted"] == 0
            and asof["rows_differing_from_live"] == 0
            and abs(asof["gap"]) <= params.pit_honest_gap,
            measured={
                "future_calls_counted": asof["future_calls_counted"],
                "rows_differing_from_live": asof["rows_differing_from_live"],
                "offline_roc_auc": asof["offline_roc_auc"],
                "production_roc_auc": asof["production_roc_auc"],
                "gap": asof["gap"],
            },
        ),
    ]
