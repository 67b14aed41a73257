"""The features lab's counterfactuals: plausible broken parts, each run through the lab.

Each replaces one part :func:`labs.features.lab.run` takes as a keyword argument — what is
logged as the model, how serving computes the features, how production counts calls, the
training table's join — or one setting, and names the claims that must then turn ✗
(``python -m labs.features --counterfactual NAME``; ``--audit`` runs them all).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from labs.common.counterfactuals import Counterfactual, LabCounterfactuals
from labs.features import events
from labs.features.lab import FeaturesParams, run
from labs.features.pipeline import MISTAKES, handwritten_features

# --- the broken parts ------------------------------------------------------------------------


def ship_classifier_only(pipeline: Any) -> Any:
    """The notebook logs the classifier; the feature code stays behind in the training repo."""
    return pipeline.named_steps["classifier"]


def _classifier(model: Any) -> Any:
    return model.named_steps["classifier"] if hasattr(model, "named_steps") else model


class ServingFitsFeaturesPerRequest:
    """Serving got a bare classifier, so it builds the features itself: medians, means and
    SDs fitted on each request's rows, one-hot columns in the data dictionary's order."""

    def __init__(self, model: Any, spec: dict[str, Any]) -> None:
        self.classifier = _classifier(model)

    def features(self, batch: pd.DataFrame) -> np.ndarray:
        return handwritten_features(batch, {}, ["batch_statistics", "category_order"])

    def score(self, features: np.ndarray) -> np.ndarray:
        return self.classifier.predict_proba(features)[:, 1]


class ServingReimplementsFeatures:
    """Serving loads the artefact but uses only its classifier; the features are re-written
    from the exported spec, with the three everyday mistakes."""

    def __init__(self, model: Any, spec: dict[str, Any]) -> None:
        self.classifier, self.spec = _classifier(model), spec

    def features(self, batch: pd.DataFrame) -> np.ndarray:
        return handwritten_features(batch, self.spec, MISTAKES)

    def score(self, features: np.ndarray) -> np.ndarray:
        return self.classifier.predict_proba(features)[:, 1]


def calls_in_todays_log(rows: pd.DataFrame, log: pd.DataFrame) -> pd.Series:
    """A backtest of "production" that counts each customer's calls in today's log: also the
    calls made after their decision date."""
    return events.naive_join(rows, log).set_index(rows.index)[events.CALLS]


def asof_join_nearest(rows: pd.DataFrame, log: pd.DataFrame) -> pd.DataFrame:
    """The as-of join with ``direction="nearest"``: the nearest call may come after the
    decision date."""
    return events.asof_join(rows, log, direction="nearest")


# --- the counterfactuals ---------------------------------------------------------------------

OUTSIDE = Counterfactual(
    "features-outside-the-artefact",
    "only the classifier is logged; serving fits the features on each request",
    ("one_fitted_artefact", "shipped_pipeline_no_skew"),
    "The notebook logs the classifier alone; the imputer, scaler and encoder stay in the "
    "training code, so serving fits its own on every request's rows.",
    components={"package": ship_classifier_only, "serving": ServingFitsFeaturesPerRequest},
)
REIMPLEMENTED = Counterfactual(
    "serving-reimplements-features",
    "serving re-implements the features from a spec",
    ("shipped_pipeline_no_skew",),
    "The fitted pipeline is logged, but serving uses only its classifier and re-writes the "
    "features from the exported spec: batch statistics, another category order, missing → 0.",
    components={"serving": ServingReimplementsFeatures},
)
CLEAN = Counterfactual(
    "skew-test-on-clean-data",
    "the skew test's data has no missing values",
    ("handwritten_transform_skews",),
    "The training and test data never lack monthly_charges, so the serving transform's "
    "'missing → 0' default is never exercised and goes unseen.",
    params={"missing_rate": 0.0},
)
BACKTEST = Counterfactual(
    "backtest-from-todays-log",
    "production is simulated from today's call log",
    ("naive_join_leaks_future",),
    "Later customers are 'scored as production would' from today's call log, which already "
    "holds the calls after their decision date: the leak is in the check too, so it hides.",
    components={"production_feature": calls_in_todays_log},
)
NEAREST = Counterfactual(
    "asof-join-nearest",
    "the as-of join takes the nearest call, not the last one before",
    ("asof_join_honest",),
    "merge_asof(direction='nearest') instead of 'backward': when a cancellation call is closer "
    "to the decision date than the last call before it, the training row counts the future.",
    components={"training_join": asof_join_nearest},
)

COUNTERFACTUALS = LabCounterfactuals(
    "features",
    "features",
    FeaturesParams,
    run,
    (OUTSIDE, REIMPLEMENTED, CLEAN, BACKTEST, NEAREST),
    audit_params={
        "train_rows": 1000,
        "holdout_rows": 800,
        "pit_customers": 3000,
        "pit_production_customers": 1500,
    },
)
