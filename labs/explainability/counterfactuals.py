"""The explainability lab's counterfactuals: one part of the explanation machinery replaced by a
plausible broken one (or one alert setting made wrong), run through the lab's own ``run()``.

``python -m labs.explainability --list-counterfactuals`` lists them; ``--counterfactual NAME``
runs one; ``--audit`` shows every claim failing under one.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
from sklearn.base import clone
from sklearn.compose import ColumnTransformer
from sklearn.preprocessing import OneHotEncoder

from labs.common.counterfactuals import Counterfactual, LabCounterfactuals
from labs.common.data import TARGET
from labs.explainability import explain as ex
from labs.explainability.lab import ExplainabilityParams, run


def owners_in_frame_order(model: Any, columns: list[str]) -> list[str]:
    """Transformed columns named by walking the *input frame's* columns and expanding each
    category into its one-hot columns — ignoring that the ColumnTransformer outputs all the
    passed-through numbers first."""
    preprocess: ColumnTransformer = model.named_steps["preprocess"]
    widths: dict[str, int] = {}
    for _, transformer, cols in preprocess.transformers_:
        if isinstance(transformer, OneHotEncoder):
            widths.update({c: len(k) for c, k in zip(cols, transformer.categories_, strict=True)})
    return [owner for c in columns for owner in [c] * widths.get(c, 1)]


def tree_shap_class_zero(classifier: Any, transformed: np.ndarray) -> tuple[np.ndarray, float]:
    """SHAP values of the first class (P(stay)) read as contributions to P(churn)."""
    import shap

    explainer = shap.TreeExplainer(classifier)
    raw = np.asarray(explainer.shap_values(transformed, check_additivity=False))
    return raw[:, :, 0], float(np.ravel(explainer.expected_value)[-1])


def signed_mean(values: np.ndarray) -> np.ndarray:
    """Global importance as the mean *signed* SHAP value: pushes up and down cancel out."""
    return values.mean(axis=0)


def mdi_as_importance(
    model: Any, holdout: pd.DataFrame, columns: list[str], repeats: int, seed: int
) -> dict[str, dict[str, float]]:
    """The forest's impurity importance reported where holdout permutation importance belongs."""
    mdi = ex.mdi_importance(model, columns)
    return {c: {"mean": v, "std": 0.0} for c, v in mdi.items()}


def refit_with_new_seed(model: Any, train: pd.DataFrame, columns: list[str]) -> Any:
    """The model refit (another seed) after it was explained, and the refit one logged."""
    seed = model.named_steps["classifier"].random_state + 1
    return clone(model).set_params(classifier__random_state=seed).fit(train[columns], train[TARGET])


COUNTERFACTUALS = LabCounterfactuals(
    "explainability",
    "explainability",
    ExplainabilityParams,
    run,
    (
        Counterfactual(
            "names-in-frame-order",
            "SHAP columns named in the input frame's order",
            ("shap_mapped_to_raw_columns",),
            "The transformed columns are named by walking the input frame's columns (one-hot "
            "expanded), but the pipeline puts every number first: contributions land on the "
            "wrong raw columns — and still add up.",
            components={"owners_of": owners_in_frame_order},
        ),
        Counterfactual(
            "signed-mean-importance",
            "global importance = mean signed SHAP value",
            ("strongest_driver_first",),
            "Global importance averages the signed SHAP values instead of their magnitude: a "
            "column that pushes some customers up and others down looks unimportant.",
            components={"summary": signed_mean},
        ),
        Counterfactual(
            "explains-class-zero",
            "SHAP values of P(stay) used as contributions to P(churn)",
            ("local_explanation", "bias_gap_explained"),
            "The explainer's output for the first class (stay) is taken for churn: every arrow "
            "of the waterfall points the wrong way and nothing adds up to P(churn).",
            components={"explainer": tree_shap_class_zero},
        ),
        Counterfactual(
            "mdi-instead-of-permutation",
            "impurity importance reported as holdout importance",
            ("permutation_agrees_with_shap", "mdi_misleads_on_noise"),
            "The 'holdout importance' is the forest's impurity (MDI) importance from the "
            "training data: the pure-noise code ranks among the real drivers.",
            components={"importance": mdi_as_importance},
        ),
        Counterfactual(
            "leak-alert-too-loose",
            "leak alert at 20 % of attribution and AUC 0.6",
            ("leak_dominates_and_flagged",),
            "The leak alert fires when one column carries 20 % of the attribution and "
            "separates churners with AUC 0.6: the honest model's real strongest driver "
            "(contract) is flagged as a leak.",
            params={"leak_share_alert": 0.2, "leak_auc_alert": 0.6},
        ),
        Counterfactual(
            "refit-after-explaining",
            "the model is refit after it was explained",
            ("explanation_versioned_with_model",),
            "The explanation is computed on one model, then the model is refit (another seed) "
            "and the refit one is logged beside it: the logged explanation no longer "
            "describes the logged model.",
            components={"model_to_log": refit_with_new_seed},
        ),
    ),
    audit_params={
        "train_rows": 3000,
        "holdout_rows": 2000,
        "n_estimators": 30,
        "shap_rows": 100,
        "bias_rows_per_group": 30,
        "permutation_rows": 800,
        "permutation_repeats": 2,
        "version_check_rows": 10,
    },
)
