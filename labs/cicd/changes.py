"""The changes a CI pipeline sees, as training recipes on toy churn data.

A *recipe* is the model code under change: which columns the pipeline uses, and what the
training script does to the table before fitting. The production model (the champion) was
built before anyone used ``support_calls``; each pull request changes the recipe:

- ``better_feature``  adds ``support_calls`` — a real signal (the generator weighs it 0.45);
- ``dropped_feature`` drops ``contract``, the strongest categorical signal;
- ``leaky_feature``   adds ``retention_calls``: calls to the retention desk, which the
  warehouse holds *in hindsight* for the training months (customers who left called to
  cancel), but which are 0 at the moment production scores a customer;
- ``preprocessing_bug`` converts ``monthly_charges`` from cents to euros in the training
  script — but the data is already in euros, and serving sends euros.

Every candidate is scored twice: *offline* on a random 25 % of its own training table,
through its own training code (what a data scientist sees in a notebook), and on the
*holdout*: the next month, features as production has them at scoring time (a time split).
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np
import pandas as pd

from labs.common.data import CATEGORICAL_FEATURES, NUMERIC_FEATURES, TARGET
from labs.common.model import quality_metrics

LEAKY = "retention_calls"


@dataclass(frozen=True)
class Recipe:
    """The model code: columns used and what the training script does before fitting."""

    name: str
    numeric: tuple[str, ...]
    categorical: tuple[str, ...]
    charges_divisor: float = 1.0  # the preprocessing bug: ≠ 1 rescales charges in training only
    description: str = ""

    @property
    def features(self) -> list[str]:
        return [*self.numeric, *self.categorical]


CHAMPION_RECIPE = Recipe(
    "champion",
    numeric=tuple(c for c in NUMERIC_FEATURES if c != "support_calls"),
    categorical=CATEGORICAL_FEATURES,
    description="in production: every column except support_calls",
)


def code_changes(bug_divisor: float) -> dict[str, Recipe]:
    """The four pull requests against :data:`CHAMPION_RECIPE`, in the order the lab runs them."""
    base = CHAMPION_RECIPE
    return {
        "better_feature": replace(
            base,
            name="better_feature",
            numeric=(*base.numeric, "support_calls"),
            description="adds support_calls",
        ),
        "dropped_feature": replace(
            base,
            name="dropped_feature",
            categorical=tuple(c for c in base.categorical if c != "contract"),
            description="drops contract",
        ),
        "leaky_feature": replace(
            base,
            name="leaky_feature",
            numeric=(*base.numeric, LEAKY),
            description=f"adds {LEAKY} (known only in hindsight)",
        ),
        "preprocessing_bug": replace(
            base,
            name="preprocessing_bug",
            charges_divisor=bug_divisor,
            description=f"training script divides monthly_charges by {bug_divisor:g}",
        ),
    }


def with_hindsight_calls(
    frame: pd.DataFrame, seed: int, churned_rate: float, stayed_rate: float
) -> pd.DataFrame:
    """The training months as the warehouse holds them: retention-desk calls counted after
    the fact (leavers call to cancel)."""
    rng = np.random.default_rng([seed, 4099])
    rate = np.where(frame[TARGET].to_numpy() == 1, churned_rate, stayed_rate)
    return frame.assign(**{LEAKY: rng.poisson(rate).astype(float)})


def as_scored_in_production(frame: pd.DataFrame) -> pd.DataFrame:
    """The next month as production sees it at scoring time: no call has happened yet."""
    return frame.assign(**{LEAKY: 0.0})


def build_pipeline(recipe: Recipe, C: float):  # -> sklearn Pipeline
    """Scale numbers, one-hot categories, logistic regression — on the recipe's columns."""
    from sklearn.compose import ColumnTransformer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import OneHotEncoder, StandardScaler

    preprocess = ColumnTransformer(
        [
            ("numeric", StandardScaler(), list(recipe.numeric)),
            (
                "categorical",
                OneHotEncoder(handle_unknown="ignore", sparse_output=False),
                list(recipe.categorical),
            ),
        ]
    )
    return Pipeline(
        [("preprocess", preprocess), ("classifier", LogisticRegression(C=C, max_iter=1000))]
    )


def training_table(recipe: Recipe, frame: pd.DataFrame) -> pd.DataFrame:
    """What the recipe's training script feeds the pipeline (the bug lives here)."""
    x = frame[recipe.features].copy()
    if recipe.charges_divisor != 1.0 and "monthly_charges" in x:
        x["monthly_charges"] = x["monthly_charges"] / recipe.charges_divisor
    return x


@dataclass(frozen=True)
class Trained:
    """A fitted candidate and its two scores."""

    recipe: Recipe
    model: object
    offline: dict[str, float]
    holdout: dict[str, float]

    @property
    def gate_metrics(self) -> dict[str, float]:
        return {
            "roc_auc": self.holdout["roc_auc"],
            "accuracy": self.holdout["accuracy"],
            "offline_roc_auc": self.offline["roc_auc"],
            "offline_holdout_gap": self.offline["roc_auc"] - self.holdout["roc_auc"],
        }


def train_and_score(
    recipe: Recipe,
    table: pd.DataFrame,
    holdout: pd.DataFrame,
    *,
    C: float,
    offline_fraction: float,
    seed: int,
) -> Trained:
    """Fit on a random (1 − offline_fraction) of ``table``; score the rest through the
    training code (offline) and ``holdout`` through the model alone (as served)."""
    rng = np.random.default_rng([seed, 31])
    is_offline = rng.random(len(table)) < offline_fraction
    fit_rows, offline_rows = table[~is_offline], table[is_offline]
    model = build_pipeline(recipe, C).fit(training_table(recipe, fit_rows), fit_rows[TARGET])
    offline_p = model.predict_proba(training_table(recipe, offline_rows))[:, 1]
    served_p = model.predict_proba(holdout[recipe.features])[:, 1]
    return Trained(
        recipe,
        model,
        quality_metrics(offline_rows[TARGET], offline_p),
        quality_metrics(holdout[TARGET], served_p),
    )
