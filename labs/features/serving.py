"""The serving side, in its own process: what production runs, separate from the training code.

A spawn-context sidecar process (:func:`labs.common.sidecar.sidecar`) shares nothing with the
lab: it loads the model's one skops file, downloaded from MLflow (only allowlisted types
trusted), as a serving container would, and answers requests of a few rows. It never imports
MLflow, so it starts in about a second. Two things are measured there:

- :func:`check_artefact`: the artefact on its own — which columns it takes, and what it
  predicts for the holdout — in a process that never saw the fitted object.
- :func:`serve_request`: one request through the serving path the lab is given
  (:class:`ArtefactServing`: the artefact's own features and classifier). It returns the
  feature rows the classifier saw and the probabilities, so skew is measured on what was
  served, against the offline features of the same rows.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from labs.common.data import FEATURES


def ship_fitted_pipeline(pipeline: Any) -> Any:
    """What is logged as the model: the whole fitted pipeline, features and classifier."""
    return pipeline


class ArtefactServing:
    """Serving that calls the artefact on raw rows: its fitted features, then its classifier
    (the two halves of ``predict_proba``, so the features it used can be logged)."""

    def __init__(self, model: Any, spec: dict[str, Any]) -> None:
        self.model = model

    def features(self, batch: pd.DataFrame) -> np.ndarray:
        return self.model[:-1].transform(batch[list(FEATURES)])

    def score(self, features: np.ndarray) -> np.ndarray:
        return self.model[-1].predict_proba(features)[:, 1]


def warm_up() -> int:
    """Import what loading and scoring need, while the lab is still fitting."""
    import sklearn.compose  # noqa: F401
    import sklearn.linear_model  # noqa: F401
    import sklearn.pipeline  # noqa: F401
    import skops.io  # noqa: F401

    return os.getpid()


_SERVER: dict[str, Any] = {}  # the serving process's one server (a worker global)


def start_serving(serving: type, model_file: Path, spec: dict[str, Any]) -> int:
    """In the serving process: load the logged model file and build ``serving`` on it;
    returns the process id (it is not the lab's)."""
    from labs.common.tracking import load_model_file

    _SERVER["server"] = serving(load_model_file(model_file), spec)
    return os.getpid()


def serve_request(batch: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    """One request: the feature rows the classifier saw, and the churn probabilities."""
    server = _SERVER["server"]
    features = np.asarray(server.features(batch), dtype=float)
    return features, server.score(features)


def check_artefact(path: Path, x: pd.DataFrame) -> dict[str, Any]:
    """In a fresh process: load the logged artefact's file and score the raw holdout with it
    alone. Reports which inputs it expects and its probabilities — or the error a raw row
    gets from an artefact that expects engineered features."""
    from labs.common.tracking import file_sha256, load_model_file

    model = load_model_file(path)
    names = getattr(model, "feature_names_in_", None)
    out: dict[str, Any] = {
        "pid": os.getpid(),
        "model_file": path.name,
        "model_file_sha256": file_sha256(path)[:16],
        "artefact_type": type(model).__name__,
        "input_columns": None if names is None else [str(n) for n in names],
        "n_inputs": int(getattr(model, "n_features_in_", -1)),
    }
    try:
        out["proba"] = model.predict_proba(x)[:, 1]
        out["error"] = ""
    except (ValueError, TypeError, KeyError) as err:  # raw columns the model cannot take
        out["proba"] = None
        out["error"] = f"{type(err).__name__}: {str(err).splitlines()[0][:200]}"
    return out
