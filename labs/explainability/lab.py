"""Explainability, checked against the truth: SHAP, permutation and impurity importance on a
churn forest whose data we generated ourselves, so we *know* which inputs matter.

The generator draws churn from a known logistic model: contract type, tenure, monthly charges
and support calls drive it (in that order of strength), payment method and internet service a
little, age not at all. We add two columns a real data set might hold:

- ``customer_code`` — an id-like code with a thousand values, pure noise;
- ``retention_calls`` — calls to the retention desk during the notice period. Only customers
  who already gave notice make them: the column is derived from the label (a leak).

We train an honest forest (without the leak) and a leaky one (with it), and check:

1. SHAP (exact tree SHAP, explained on the pipeline's transformed data and mapped back to the
   raw columns by us) is mapped right — it adds up to the pipeline's own output, row by row,
   and each driver's values are explained by that driver's own value — ranks the generator's
   strongest driver first, and explains one customer (a waterfall).
2. Permutation importance on the holdout agrees with SHAP on the top features; impurity (MDI)
   importance ranks the pure-noise code high, permutation puts it at ≈ 0.
3. The leak dominates every explanation and a simple check flags it, and nothing in the honest
   model. Each explanation is logged to MLflow with its model; it changes with the model.
4. Bias: recall per contract type, and the attributions that explain the gap.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from labs.common.catalogue import topic
from labs.common.data import CATEGORICAL_FEATURES, TARGET
from labs.common.params import check_at_least, check_open_unit
from labs.common.results import LabResult, artifact_path, claim_metrics
from labs.explainability import explain as ex
from labs.explainability.claims import make_claims
from labs.explainability.report import format_tables, plot_importance, plot_local, write_tables

QUESTION = topic("explainability").question
# The generator's four real drivers (strongest first): their SHAP values must belong to them.
DRIVERS = ("contract", "tenure_months", "monthly_charges", "support_calls")
EXPERIMENT = topic("explainability").experiment


@dataclass(frozen=True)
class ExplainabilityParams:
    """Parameters of the explainability lab (``params.yaml`` → ``explainability``)."""

    seed: int = 7
    train_rows: int = 4000
    holdout_rows: int = 3000
    n_estimators: int = 50
    max_depth: int = 10
    noise_cardinality: int = 1000
    leak_mean_churned: float = 3.0
    leak_mean_stayed: float = 0.2
    shap_rows: int = 200
    bias_rows_per_group: int = 60
    permutation_rows: int = 1500
    permutation_repeats: int = 5
    top_k: int = 4
    threshold: float = 0.5
    additivity_tol: float = 1e-6
    mapping_share_min: float = 0.5
    noise_permutation_max: float = 0.005
    leak_share_alert: float = 0.5
    leak_auc_alert: float = 0.9
    recall_gap_min: float = 0.3
    bias_share_min: float = 0.5
    version_check_rows: int = 20

    def __post_init__(self) -> None:
        check_at_least(
            self,
            "explainability",
            {
                "train_rows": 500,
                "holdout_rows": 300,
                "n_estimators": 5,
                "max_depth": 2,
                "noise_cardinality": 50,
                "shap_rows": 20,
                "bias_rows_per_group": 5,
                "permutation_rows": 100,
                "permutation_repeats": 1,
                "top_k": 1,
                "version_check_rows": 1,
            },
        )
        if self.permutation_rows > self.holdout_rows:
            raise ValueError("explainability.permutation_rows must be <= holdout_rows")
        if self.version_check_rows > self.shap_rows:
            raise ValueError("explainability.version_check_rows must be <= shap_rows")
        if self.top_k > 7:
            raise ValueError(f"explainability.top_k must be <= 7 (features), got {self.top_k}")
        for name in ("leak_mean_churned", "leak_mean_stayed"):
            if getattr(self, name) < 0:
                raise ValueError(f"explainability.{name} must be >= 0")
        check_open_unit(
            self,
            "explainability",
            (
                "threshold",
                "noise_permutation_max",
                "leak_share_alert",
                "leak_auc_alert",
                "recall_gap_min",
                "bias_share_min",
                "additivity_tol",
                "mapping_share_min",
            ),
        )


@dataclass(frozen=True)
class Parts:
    """The explanation machinery the lab demonstrates; a counterfactual replaces one part."""

    owners_of: Callable[..., list[str]] = ex.original_columns
    explainer: Callable[..., tuple[np.ndarray, float]] = ex.tree_shap
    summary: Callable[[np.ndarray], np.ndarray] = ex.mean_abs
    importance: Callable[..., dict[str, dict[str, float]]] = ex.permutation_scores
    model_to_log: Callable[[Any, pd.DataFrame, list[str]], Any] | None = None

    def explain(self, model: Any, rows: pd.DataFrame, columns: list[str]) -> ex.Explanation:
        return ex.shap_explain(model, rows, columns, self.owners_of, self.explainer)


def run(
    params: ExplainabilityParams,
    out_dir: Path,
    echo: Callable[[str], None] = lambda _: None,
    *,
    owners_of: Callable[..., list[str]] = ex.original_columns,
    explainer: Callable[..., tuple[np.ndarray, float]] = ex.tree_shap,
    summary: Callable[[np.ndarray], np.ndarray] = ex.mean_abs,
    importance: Callable[..., dict[str, dict[str, float]]] = ex.permutation_scores,
    model_to_log: Callable[[Any, pd.DataFrame, list[str]], Any] | None = None,
) -> LabResult:
    """Train the honest and the leaky forest, explain both four ways, check the explanations.

    The keyword arguments are the parts the lab demonstrates (how SHAP values are mapped back
    to raw columns, computed, summarised; the holdout importance; which model is logged —
    ``None``: the one explained); ``labs.explainability.counterfactuals`` hands in broken ones."""
    import mlflow

    from labs.common.tracking import start_run

    parts = Parts(owners_of, explainer, summary, importance, model_to_log)

    out_dir.mkdir(parents=True, exist_ok=True)
    train, holdout = ex.make_frames(
        params.train_rows,
        params.holdout_rows,
        params.seed,
        params.noise_cardinality,
        params.leak_mean_churned,
        params.leak_mean_stayed,
    )
    # The rows SHAP explains: a seeded sample of the holdout (tree SHAP costs time per row).
    sample = holdout.sample(params.shap_rows, random_state=params.seed)
    # Permutation importance predicts the whole set once per column and repeat: a subset.
    shuffled = holdout.head(params.permutation_rows)

    models: dict[str, dict[str, Any]] = {}
    for name, leaky in (("honest", False), ("leaky", True)):
        columns = ex.columns_for(leaky)
        echo(f"Training the {name} forest on {len(train)} customers ({len(columns)} columns) …")
        model = ex.build_forest(columns, params.n_estimators, params.max_depth, params.seed)
        model.fit(train[columns], train[TARGET])
        echo(f"Explaining it: tree SHAP on {len(sample)} rows, permutation on {len(shuffled)} …")
        shap_exp = parts.explain(model, sample, columns)
        shap_imp = shap_exp.global_importance(summary)
        models[name] = {
            "model": model,
            "columns": columns,
            "shap": shap_exp,
            "shap_importance": shap_imp,
            "permutation": importance(
                model, shuffled, columns, params.permutation_repeats, params.seed
            ),
            "mdi": ex.mdi_importance(model, columns, owners_of),
            "single_auc": {c: ex.single_feature_auc(train, holdout, c) for c in columns},
            "proba": model.predict_proba(holdout[columns])[:, 1],
        }
        flagged = ex.leak_check(
            ex.shares(shap_imp),
            models[name]["single_auc"],
            params.leak_share_alert,
            params.leak_auc_alert,
        )
        models[name]["flagged"] = flagged
        echo(f"  leak check on the {name} model flags: {flagged or 'nothing'}")

    honest = models["honest"]
    truth = ex.true_importance(holdout, honest["columns"])

    # Bias: churners on a month-to-month vs a two-year contract, explained with SHAP.
    echo("Bias: recall per contract type, and SHAP on churners of the two extreme groups …")
    recall_rows = ex.recall_by_group(holdout, honest["proba"], "contract", params.threshold)
    bias = _bias_explanations(params, holdout, honest, parts)

    # A local explanation: the customer the honest model is most sure will churn.
    local_row = int(np.argmax(honest["shap"].output))
    local = {
        "customer": int(sample.index[local_row]),
        "values": dict(
            zip(honest["columns"], honest["shap"].values[local_row].tolist(), strict=True)
        ),
        "base_value": honest["shap"].base_value,
        "output": float(honest["shap"].output[local_row]),
        "churned": int(sample[TARGET].iloc[local_row]),
        "features": {c: _plain(sample[c].iloc[local_row]) for c in honest["columns"]},
        "truth": ex.true_contributions(holdout).loc[sample.index[local_row]].to_dict(),
    }

    echo(f"Logging both models with their explanations to MLflow ({EXPERIMENT}) …")
    with start_run(EXPERIMENT, "explainability-lab", asdict(params)) as mlflow_run:
        versioning = _log_and_reload(params, sample, train, models, parts)
        mapping = _mapping_check(sample, models)
        claims = make_claims(params, models, truth, local, bias, recall_rows, versioning, mapping)
        echo("")
        echo(format_tables(models, truth, recall_rows))
        echo("")
        files = [
            plot_importance(models["honest"], truth, out_dir / "global_importance.png"),
            plot_local(local, out_dir / "local_explanation.png"),
            write_tables(models, truth, recall_rows, out_dir / "tables.md"),
        ]
        mlflow.log_metrics(claim_metrics(claims))
        for f in files:
            mlflow.log_artifact(str(f))
        run_id = mlflow_run.info.run_id

    return LabResult(
        lab="explainability",
        question=QUESTION,
        claims=claims,
        artifacts=[artifact_path(f) for f in files],
        mlflow={
            "experiment": EXPERIMENT,
            "run_id": run_id,
            **{f"{n}_model_uri": versioning[n]["model_uri"] for n in models},
        },
    )


def _plain(value: Any) -> Any:
    """A cell as a short printable value (numpy scalars → Python numbers)."""
    return value.item() if hasattr(value, "item") else str(value)


def _mapping_check(sample: pd.DataFrame, models: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """Per model and per column that carries real attribution (the generator's drivers, the
    leak): η², how much of its mapped SHAP values that column's own value explains."""
    checked = {"honest": list(DRIVERS), "leaky": [*DRIVERS, ex.LEAK]}
    out: dict[str, Any] = {}
    for name, columns in checked.items():
        exp: ex.Explanation = models[name]["shap"]
        for column in columns:
            values = exp.values[:, exp.columns.index(column)]
            share = ex.explained_share(values, sample[column], column in CATEGORICAL_FEATURES)
            out[f"{name}.{column}"] = share
    return out


def _bias_explanations(
    params: ExplainabilityParams,
    holdout: pd.DataFrame,
    honest: dict[str, Any],
    parts: Parts,
) -> dict[str, Any]:
    """SHAP on up to ``bias_rows_per_group`` churners on each extreme contract. SHAP is
    additive, so the gap in their mean P(churn) splits exactly into per-column gaps."""
    groups = {}
    for group in ("month-to-month", "two-year"):
        churners = holdout[(holdout["contract"] == group) & (holdout[TARGET] == 1)]
        rows = churners.head(params.bias_rows_per_group)
        groups[group] = parts.explain(honest["model"], rows, honest["columns"])
    a, b = groups["month-to-month"], groups["two-year"]
    per_column = a.values.mean(axis=0) - b.values.mean(axis=0)
    return {
        "rows": {g: int(e.values.shape[0]) for g, e in groups.items()},
        "mean_output": {g: float(e.output.mean()) for g, e in groups.items()},
        "output_gap": float(a.output.mean() - b.output.mean()),
        "gap_by_column": dict(zip(honest["columns"], per_column.tolist(), strict=True)),
        "max_additivity_error": float(max(a.additivity_error.max(), b.additivity_error.max())),
    }


def _log_and_reload(
    params: ExplainabilityParams,
    sample: pd.DataFrame,
    train: pd.DataFrame,
    models: dict[str, dict[str, Any]],
    parts: Parts,
) -> dict[str, dict[str, Any]]:
    """Log each model and its explanation side by side in the active MLflow run; read both
    back, check the explanation names the model's exact bytes and is reproduced by the model
    loaded from MLflow."""
    import mlflow
    import mlflow.artifacts

    from labs.common.tracking import (
        file_sha256,
        load_sklearn_model,
        log_sklearn_model,
        logged_model_file,
    )

    out: dict[str, dict[str, Any]] = {}
    for name, m in models.items():
        logged_model = (
            m["model"]
            if parts.model_to_log is None
            else parts.model_to_log(m["model"], train, m["columns"])
        )
        info = log_sklearn_model(logged_model, name=f"{name}-forest")
        sha = file_sha256(logged_model_file(info.model_uri))
        exp: ex.Explanation = m["shap"]
        record = {
            "model_uri": info.model_uri,
            "model_sha256": sha,
            "columns": exp.columns,
            "base_value": exp.base_value,
            "rows": [int(i) for i in sample.index],
            "values": exp.values.tolist(),
            "global_importance": exp.global_importance(parts.summary),
        }
        path = f"explanations/{name}.json"
        mlflow.log_dict(record, path)
        logged = mlflow.artifacts.load_dict(f"{mlflow.get_artifact_uri()}/{path}")
        reloaded = load_sklearn_model(logged["model_uri"])
        rows = sample.loc[logged["rows"][: params.version_check_rows]]
        again = parts.explain(reloaded, rows, logged["columns"])
        stored = np.asarray(logged["values"])[: params.version_check_rows]
        out[name] = {
            "model_uri": info.model_uri,
            "explanation_artifact": path,
            "sha_matches": file_sha256(logged_model_file(logged["model_uri"])) == sha,
            "recomputed_max_abs_diff": float(np.max(np.abs(again.values - stored))),
            "global_importance": logged["global_importance"],
        }
    return out
