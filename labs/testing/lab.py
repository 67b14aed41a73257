"""Which tests should a model pass before production? Six kinds, each shown catching a defect.

The lab is a planted-defect suite. For every kind of test the seed names, it builds a correct
candidate and one with the defect that kind of test exists to catch, runs the test on both,
and records the numbers: a test kind that cannot tell the two apart would be a failed claim.

1. **Unit** — the feature transform's contract (hypothesis properties + one example test);
   defect: a hand-written transform that scales with the scored batch's statistics and lays
   the one-hot columns out in another order.
2. **Integration** — the served model over real HTTP (the project's serving app on a free
   port); defect: a model trained on a renamed column — it loads, reports ready, and fails.
3. **Performance gate** — ROC-AUC, recall at a fixed precision, calibration error, and "beats
   the DummyClassifier and the champion by more than 2σ of seed noise", judged by MLflow's
   ``validate_evaluation_results``; defect: a candidate trained on partly scrambled labels.
4. **Stress** — a locust step ramp (subprocess) against each served candidate; defect: a
   bagged ensemble of identical logistic regressions — the correct answers at many times the
   work per request — whose p99 leaves the budget at low load.
5. **A/B** — power analysis, a fixed-horizon two-proportion test, A/A false positives, and
   peeking after every batch (the defective procedure) fixed by a Pocock boundary.
6. **Robustness** — CheckList-style invariance, directional and corrupt-input tests; defect:
   an overfit decision tree called without the serving schema in front.

Then the kinds are told apart (:mod:`labs.testing.matrix`): every kind of model test runs on
every candidate it can run on, to show each catching the fault planted for it and missing the
faults planted for the others.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from labs.common.catalogue import topic
from labs.common.data import FEATURES, TARGET, make_churn_data, make_production_stream
from labs.common.model import TrainParams, train_model
from labs.common.params import check_at_least, check_open_unit
from labs.common.results import LabResult, artifact_path, claim_metrics
from labs.testing import abtest, gate, integration, matrix, robustness, stress, unit
from labs.testing.claims import make_claims
from labs.testing.report import format_table, plot_ab, plot_stress, write_details

QUESTION = topic("testing").question
EXPERIMENT = topic("testing").experiment


@dataclass(frozen=True)
class TestingParams:
    """Parameters of the testing lab (``params.yaml`` → ``testing``)."""

    __test__ = False  # not a pytest class, despite the name

    seed: int = 7
    train_rows: int = 3000
    holdout_rows: int = 2000
    hypothesis_examples: int = 25
    unit_max_batch_rows: int = 12
    noise_seeds: int = 5
    noise_sigmas: float = 2.0
    precision_target: float = 0.6
    min_roc_auc: float = 0.78
    min_recall_at_precision: float = 0.5
    max_calibration_error: float = 0.05
    label_noise: float = 0.4
    serve_batch_rows: int = 50
    slow_request_ms: float = 60.0
    stress_users: tuple[int, ...] = (1, 2, 4, 8, 16)
    stress_step_seconds: float = 2.0
    stress_pacing_s: float = 0.1
    p99_budget_ms: float = 100.0
    knee_ratio: float = 4.0
    ab_stream_days: int = 7
    ab_stream_rows: int = 1000
    ab_uplift: float = 0.02
    ab_alpha: float = 0.05
    ab_power: float = 0.8
    ab_looks: int = 10
    ab_simulations: int = 2000
    ab_power_tolerance: float = 0.05
    peeking_inflation: float = 2.5
    robust_rows: int = 1000
    invariance_years: int = 2
    invariance_max_flip: float = 0.01

    def __post_init__(self) -> None:
        check_at_least(
            self,
            "testing",
            {
                "train_rows": 300,
                "holdout_rows": 200,
                "hypothesis_examples": 5,
                "unit_max_batch_rows": 1,
                "noise_seeds": 3,
                "serve_batch_rows": 1,
                "ab_looks": 2,
                "ab_simulations": 500,
                "robust_rows": 50,
                "invariance_years": 1,
                "ab_stream_days": 1,
                "ab_stream_rows": 100,
            },
        )
        if not self.stress_users or any(u < 1 for u in self.stress_users):
            raise ValueError(f"testing.stress_users must be >= 1 each, got {self.stress_users!r}")
        if list(self.stress_users) != sorted(set(self.stress_users)):
            raise ValueError(f"testing.stress_users must increase, got {self.stress_users!r}")
        check_open_unit(
            self,
            "testing",
            (
                "precision_target",
                "min_roc_auc",
                "min_recall_at_precision",
                "max_calibration_error",
                "label_noise",
                "ab_uplift",
                "ab_alpha",
                "ab_power",
                "ab_power_tolerance",
                "invariance_max_flip",
            ),
        )
        for name in ("noise_sigmas", "slow_request_ms", "stress_step_seconds",
                     "stress_pacing_s", "p99_budget_ms", "knee_ratio",
                     "peeking_inflation"):  # fmt: skip
            if getattr(self, name) <= 0:
                raise ValueError(f"testing.{name} must be > 0, got {getattr(self, name)!r}")


def run(
    params: TestingParams,
    out_dir: Path,
    echo: Callable[[str], None] = lambda _: None,
    *,
    integration_test: Callable[..., dict[str, Any]] = integration.over_http,
    gate_check: Callable[..., gate.GateVerdict] = gate.run_gate,
    z_statistics: Callable[..., np.ndarray] = abtest.z_statistics,
    robust_scorer: Callable[[Any], robustness.Scorer] = robustness.validated_scorer,
) -> LabResult:
    """Build the candidates, run the six kinds of tests on each, and decide the claims.

    The keyword arguments are the tests' working parts (the counterfactuals replace them):
    how the integration test reaches the served model, the gate's verdict, the A/B test's
    z statistic, and what stands in front of a model the robustness tests call."""
    from labs.common.serving.server import serve_in_background

    out_dir.mkdir(parents=True, exist_ok=True)
    parts = {
        "integration_test": integration_test,
        "gate_check": gate_check,
        "z_statistics": z_statistics,
        "robust_scorer": robust_scorer,
    }
    with contextlib.ExitStack() as servers:
        # The servers import for seconds: start them now, warming up, and tell them which
        # model to load once it is logged (integration and stress share the correct one).
        echo("Starting three serving processes (they warm up while the lab trains) …")
        served = {}
        for name in SERVED:
            log = out_dir / f"predictions-{name}.sqlite"
            log.unlink(missing_ok=True)
            served[name] = servers.enter_context(
                serve_in_background(
                    None, log_path=log, server_log=out_dir / f"server-{name}.log", wait=False
                )
            )
        return _run(params, out_dir, echo, served, parts)


SERVED = ("correct", "renamed_column", "slow_ensemble")


def _run(
    params: TestingParams,
    out_dir: Path,
    echo: Callable[[str], None],
    served: dict[str, Any],
    parts: dict[str, Any],
) -> LabResult:
    import mlflow

    from labs.common.tracking import log_sklearn_model, start_run

    train = make_churn_data(params.train_rows, seed=params.seed)
    holdout = make_churn_data(params.holdout_rows, seed=params.seed + 1)
    x, y = holdout[list(FEATURES)], holdout[TARGET].to_numpy()
    echo(f"Training the candidates on {len(train)} customers …")
    correct = train_model(train, TrainParams(seed=params.seed))
    slow = stress.slow_ensemble(train, params.slow_request_ms)
    echo(
        f"The stress defect: a {slow.copies}-copy bagged ensemble, {slow.measured_ms:.0f} ms "
        f"per one-row call on this machine (target {params.slow_request_ms:g} ms)"
    )
    models = {
        "correct": correct,
        "renamed_column": integration.renamed_column_model(train),
        "label_noise": train_model(
            gate.with_label_noise(train, params.label_noise, params.seed + 3), TrainParams()
        ),
        "slow_ensemble": slow.model,
    }
    cands = matrix.candidates(models, parts["robust_scorer"], robustness.raw_scorer)
    runs: dict[str, dict[str, Any]] = {k: {} for k in matrix.KINDS}

    # 1. Unit: the transform's contract, on every candidate's transform.
    echo(f"Unit: the transform contract, {params.hypothesis_examples} hypothesis batches each …")
    columns = unit.model_column_order(correct.named_steps["preprocess"])
    suite = {name: (c.transform, c.classifier) for name, c in cands.items()}
    suite["two_defects"] = (unit.batch_statistics_transform, cands["correct"].classifier)
    for name, (transform, classifier) in suite.items():
        runs["unit"][name] = [
            *unit.check_properties(
                transform, classifier, len(columns), params.hypothesis_examples,
                params.unit_max_batch_rows,
            ),
            unit.check_category_columns(transform, columns),
        ]  # fmt: skip

    # 3. Performance gate (in process; before the servers are needed).
    echo(f"Performance gate: seed noise over {params.noise_seeds} retrains, then the gate …")
    noise = gate.seed_noise(
        holdout, params.train_rows, params.noise_seeds, params.seed, params.precision_target
    )
    margin = params.noise_sigmas * noise["roc_auc_std"]
    baseline_models = {"champion": gate.numeric_only_model(train), "dummy": gate.dummy_model(train)}
    probabilities = {k: c.predict(x) for k, c in cands.items()}
    probabilities |= {k: m.predict_proba(x)[:, 1] for k, m in baseline_models.items()}
    metrics = {
        k: gate.gate_metrics(y, p, params.precision_target) for k, p in probabilities.items()
    }
    thresholds = {
        "min_roc_auc": params.min_roc_auc,
        "min_recall_at_precision": params.min_recall_at_precision,
        "max_calibration_error": params.max_calibration_error,
        "margin": margin,
    }
    baselines = {"dummy": metrics["dummy"], "champion": metrics["champion"]}
    runs["gate"] = {k: parts["gate_check"](k, metrics[k], baselines, **thresholds) for k in cands}

    with start_run(EXPERIMENT, "testing-lab", asdict(params)) as mlflow_run:
        echo("Logging the served candidates to MLflow and loading them in the servers …")
        for name in SERVED:
            served[name].bind(log_sklearn_model(models[name], name=name).model_uri)
        for server in served.values():
            server.wait_ready()

        # 2. Integration over HTTP, on every served candidate.
        echo(
            f"Integration: {len(holdout)} customers over HTTP, {params.serve_batch_rows} per call …"
        )
        for name in SERVED:
            target = matrix.Served(served[name].url, cands[name].predict)
            runs["integration"][name] = parts["integration_test"](
                target, holdout, cands[name].predict(x), params.serve_batch_rows
            )
        corrupt = integration.corrupt_request(
            served["correct"].url, integration.request_rows(holdout.head(1))[0]
        )

        # 4. Stress: a locust ramp per served candidate, one after the other.
        bodies = integration.request_bodies(holdout.head(200), 1)
        for name in ("correct", "slow_ensemble"):
            echo(f"Stress: locust ramp {list(params.stress_users)} users against {name} …")
            runs["stress"][name] = stress.run_ramp(
                name, served[name].url, bodies, out_dir,
                users=params.stress_users, step_seconds=params.stress_step_seconds,
                pacing_s=params.stress_pacing_s, p99_budget_ms=params.p99_budget_ms,
            )  # fmt: skip

        # 5. A/B, simulated on the production stream's churn rate.
        echo(f"A/B: {params.ab_simulations} simulated experiments per scenario …")
        stream = make_production_stream(
            params.ab_stream_days, params.ab_stream_rows, seed=params.seed + 5
        )
        ab = abtest.simulate(
            float(stream[TARGET].mean()), params.ab_uplift, params.ab_alpha, params.ab_power,
            params.ab_looks, params.ab_simulations, params.seed, z_statistics=parts["z_statistics"],
        )  # fmt: skip

        # 6. Robustness, CheckList style, on every candidate and the overfit, unvalidated tree.
        echo("Robustness: invariance, directional and corrupt-input tests …")
        rows = integration.request_rows(holdout.head(params.robust_rows))
        scorers = {k: c.scorer for k, c in cands.items()}
        scorers["overfit_unvalidated"] = robustness.raw_scorer(robustness.overfit_tree(train, 0))
        for name, score in scorers.items():
            runs["robustness"][name] = {
                "invariance": robustness.invariance(
                    score, rows, params.seed, params.invariance_years
                ),
                "directional": robustness.directional(score, rows),
                "corrupt": robustness.corrupt_inputs(score, rows[0]),
            }

        results = {
            "unit": {"correct": runs["unit"]["correct"],
                     "batch_statistics": runs["unit"].pop("two_defects")},
            "gate": {"noise": noise, "thresholds": thresholds, "metrics": metrics,
                     "verdicts": {"correct": runs["gate"]["correct"],
                                  "degraded": runs["gate"]["label_noise"]}},
            "integration": {**runs["integration"], "corrupt_request": corrupt},
            "stress": runs["stress"],
            "slow_ensemble": {
                "copies": slow.copies, "one_row_ms": slow.measured_ms,
                "max_abs_dp_vs_correct": float(
                    np.max(np.abs(probabilities["slow_ensemble"] - probabilities["correct"]))
                ),
            },
            "ab": ab,
            "robustness": {k: runs["robustness"][k] for k in ("correct", "overfit_unvalidated")},
            "matrix": matrix.catches(runs, params),
        }  # fmt: skip
        claims = make_claims(params, results)
        echo("")
        echo(format_table(results, params))
        echo("")
        files = [
            plot_stress(runs["stress"], params.p99_budget_ms, out_dir / "stress_ramp.png"),
            plot_ab(ab, params.ab_alpha, params.ab_power, out_dir / "ab_false_positives.png"),
            write_details(results, out_dir / "details.json"),
        ]
        mlflow.log_metrics(claim_metrics(claims))
        _log_measurements(mlflow, results)
        for f in files:
            mlflow.log_artifact(str(f))
        run_id = mlflow_run.info.run_id

    return LabResult(
        lab="testing",
        question=QUESTION,
        claims=claims,
        artifacts=[artifact_path(f) for f in files],
        mlflow={"experiment": EXPERIMENT, "run_id": run_id},
    )


def _log_measurements(mlflow: Any, results: dict[str, Any]) -> None:
    """The stress ramp as metric series (step = users) and each candidate's gate metrics."""
    for name, ramp in results["stress"].items():
        for step in ramp.steps:
            for key in ("rps", "p50_ms", "p95_ms", "p99_ms", "error_rate"):
                if np.isfinite(step[key]):
                    mlflow.log_metric(f"stress.{name}.{key}", step[key], step=int(step["users"]))
    for name, metrics in results["gate"]["metrics"].items():
        mlflow.log_metrics({f"gate.{name}.{k}": v for k, v in metrics.items()})
