"""Model drift vs concept drift — caught, told apart, and measured.

A churn model is trained on last quarter's customers. Then four batches of new customers
arrive, each with one kind of change:

1. **no drift** — same customers, same reasons to churn;
2. **covariate drift** — prices rise and more customers are on month-to-month contracts:
   P(x) changes, the reasons to churn (P(churn | x)) do not;
3. **concept drift** — the same kind of customers, but a share of them now churn for new
   reasons: P(churn | x) changes, P(x) does not;
4. **prior shift** — the base churn rate doubles: P(churn) changes, P(x | churn) does not.

For each batch we run the feature-drift tests (K-S for numbers, a two-sample chi-square for
categories, Bonferroni-corrected) plus target and prediction drift through Evidently, and we
measure the model's quality on the batch's (eventually known) labels. The point an
interviewer wants to hear: input monitoring catches covariate drift but is blind to concept
drift — only performance monitoring on labelled data catches that.

A resampling study then answers the follow-up "how do you trust an alert?": each test's
false-alarm rate with no drift and its detection rate, at batch sizes 100 to 10 000.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from concurrent.futures import Executor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from labs.common.catalogue import topic
from labs.common.data import LABEL, PROBA, TARGET, make_churn_data
from labs.common.drift import DriftResult, column_threshold, detect_drift
from labs.common.model import TrainParams, evaluate_model, split_xy, train_model
from labs.common.params import check_at_least
from labs.common.results import LabResult, artifact_path
from labs.common.sidecar import sidecar as labs_sidecar
from labs.common.tracking import log_run_record, warm_up_tracking
from labs.drift import report
from labs.drift.claims import FamilyAlarms, make_claims
from labs.drift.study import FlagTest, run_study

QUESTION = topic("drift").question
EXPERIMENT = "lab-drift"


@dataclass(frozen=True)
class DriftParams:
    """Parameters of the drift lab (``params.yaml`` → ``drift``)."""

    seed: int = 7
    train_rows: int = 3000
    batch_rows: int = 1000
    alpha: float = 0.05
    covariate_shift: Mapping[str, Any] = field(
        default_factory=lambda: {
            "monthly_charges": 12.0,
            "contract": {"month-to-month": 0.65, "one-year": 0.2, "two-year": 0.15},
        }
    )
    concept_drift: float = 0.6
    prior_churn_rate: float = 0.5
    quality_drop_alert: float = 0.05
    resamples: int = 200
    sample_sizes: tuple[int, ...] = (100, 1000, 10000)
    small_shift: Mapping[str, Any] = field(
        default_factory=lambda: {
            "monthly_charges": 2.0,
            "contract": {"month-to-month": 0.53, "one-year": 0.29, "two-year": 0.18},
        }
    )
    study_row_budget: int = 400_000
    false_alarm_batches: int = 200
    html_reports: bool = True

    def __post_init__(self) -> None:
        object.__setattr__(self, "sample_sizes", tuple(int(n) for n in self.sample_sizes))
        if not 0 < self.alpha < 0.5:
            raise ValueError(f"drift.alpha must be in (0, 0.5), got {self.alpha!r}")
        check_at_least(
            self,
            "drift",
            {"train_rows": 50, "batch_rows": 50, "resamples": 20, "false_alarm_batches": 20},
        )
        if len(self.sample_sizes) < 2 or min(self.sample_sizes) < 20:
            raise ValueError(
                f"drift.sample_sizes needs at least two sizes >= 20, got {self.sample_sizes!r}"
            )
        if not 0 <= self.quality_drop_alert < 1:
            raise ValueError(
                f"drift.quality_drop_alert must be in [0, 1), got {self.quality_drop_alert!r}"
            )


def fixed_reference(reference: pd.DataFrame, yesterday: pd.DataFrame) -> pd.DataFrame:
    """The baseline every batch is compared with: held-out rows of the training distribution
    (``yesterday``, the previous batch of the same stream, is not a baseline)."""
    return reference


def run(
    params: DriftParams,
    out_dir: Path,
    echo: Callable[[str], None] = lambda _: None,
    *,
    threshold_rule: Callable[[float, int], float] = column_threshold,
    reference_for: Callable[[pd.DataFrame, pd.DataFrame], pd.DataFrame] = fixed_reference,
    score_quality: Callable[[Any, pd.DataFrame], dict[str, float]] = evaluate_model,
    draw_batch: Callable[..., pd.DataFrame] = make_churn_data,
    study_tests: Mapping[str, FlagTest] | None = None,
) -> LabResult:
    """Run every scenario, the detector's false-alarm trials and the resampling study; return
    the measured claims.

    The keyword-only arguments are the parts the lab demonstrates, replaceable by broken
    versions (``labs/drift/counterfactuals.py``): the detector's per-column threshold, the
    baseline a batch is compared with, how quality is scored, the data simulator, and the
    study's tests (method → flag function, overriding :data:`~labs.drift.study.STUDY_TESTS`).
    """
    parts = _Parts(threshold_rule, reference_for, score_quality, draw_batch, study_tests)
    # The sidecar (a process on the other core, see below) is killed, not awaited, if the
    # lab stops early: Ctrl-C takes effect at once.
    with labs_sidecar() as sidecar:
        return _run(params, out_dir, echo, sidecar, parts)


@dataclass(frozen=True)
class _Parts:
    threshold_rule: Callable[[float, int], float]
    reference_for: Callable[[pd.DataFrame, pd.DataFrame], pd.DataFrame]
    score_quality: Callable[[Any, pd.DataFrame], dict[str, float]]
    draw_batch: Callable[..., pd.DataFrame]
    study_tests: Mapping[str, FlagTest] | None


def _run(
    params: DriftParams,
    out_dir: Path,
    echo: Callable[[str], None],
    sidecar: Executor,
    parts: _Parts,
) -> LabResult:
    out_dir.mkdir(parents=True, exist_ok=True)
    draw = parts.draw_batch

    # Imports dominate this lab: Evidently ~8 s, MLflow ~6 s with its store. A sidecar process
    # on the other core runs the resampling study (numpy only), then opens MLflow, and at the
    # end logs the runs, while this process imports Evidently and runs the scenarios.
    sizes = list(params.sample_sizes)
    echo(f"Sidecar: resampling study, {params.resamples} resamples at n = {sizes}")
    study_future = sidecar.submit(
        run_study,
        sizes=params.sample_sizes,
        resamples=params.resamples,
        alpha=params.alpha,
        shift=dict(params.covariate_shift),
        small_shift=dict(params.small_shift),
        concept_drift=params.concept_drift,
        seed=params.seed,
        row_budget=params.study_row_budget,
        tests=None if parts.study_tests is None else dict(parts.study_tests),
        draw_batch=draw,
    )
    sidecar.submit(warm_up_tracking)

    # The model and its reference batch: held-out rows from the training distribution. The
    # reference carries the model's predictions too, so prediction drift can be measured.
    echo("Training the churn model on the reference distribution …")
    train = draw(params.train_rows, seed=params.seed)
    model = train_model(train, TrainParams(seed=params.seed))
    reference = _with_predictions(model, draw(params.batch_rows, seed=params.seed + 1))
    reference_quality = parts.score_quality(model, reference)

    # Each scenario changes exactly one thing (the generator's knobs guarantee that).
    scenarios: dict[str, dict[str, Any]] = {
        "no_drift": {},
        "covariate": {"covariate_shift": dict(params.covariate_shift)},
        "concept": {"concept_drift": params.concept_drift},
        "prior": {"churn_rate": params.prior_churn_rate},
    }
    drift: dict[str, DriftResult] = {}
    quality: dict[str, dict[str, float]] = {}
    for i, (name, knobs) in enumerate(scenarios.items()):
        echo(f"Scenario {name}: drawing {params.batch_rows} rows, running Evidently …")
        batch = draw(params.batch_rows, seed=params.seed + 10 + i, **knobs)
        current = _with_predictions(model, batch)
        # The day before, from the same stream: what a sliding-window baseline would be.
        yesterday = _with_predictions(
            model, draw(params.batch_rows, seed=params.seed + 30 + i, **knobs)
        )
        quality[name] = parts.score_quality(model, current)
        drift[name] = detect_drift(
            parts.reference_for(reference, yesterday),
            current,
            monitored=[TARGET, PROBA],
            alpha=params.alpha,
            classification=(TARGET, LABEL, PROBA),
            html_path=out_dir / f"report_{name}.html" if params.html_reports else None,
            threshold_rule=parts.threshold_rule,
        )

    # The detector's own false-alarm rate: one trial per batch pair, a family-wise alarm. Half
    # the pairs run in the sidecar (after the study), half here: both cores share the work.
    echo(f"False alarms: the detector on {params.false_alarm_batches} no-drift batch pairs …")
    half = params.false_alarm_batches // 2
    other_half = sidecar.submit(family_alarms, model, params, parts.threshold_rule, draw, half, 1)
    mine = family_alarms(
        model, params, parts.threshold_rule, draw, params.false_alarm_batches - half, 0
    )
    family = mine.plus(other_half.result())

    # How much to trust those verdicts: false alarms and detections over many resamples.
    study = study_future.result()

    claims = make_claims(params, reference_quality, quality, drift, study, family)

    # What people look at: two tables (CSV and printed), two plots, the Evidently reports.
    scenarios_csv, study_csv = out_dir / "scenarios.csv", out_dir / "false_alarms.csv"
    table = report.scenario_table(reference_quality, quality, drift)
    table.to_csv(scenarios_csv, index=False)
    report.study_table(study).to_csv(study_csv, index=False)
    echo("Plotting …")
    figures = [
        report.plot_scenarios(
            table, reference_quality, params.quality_drop_alert, out_dir / "drift_vs_quality.png"
        ),
        report.plot_study(study, params.alpha, out_dir / "false_alarms_vs_sample_size.png"),
    ]
    texts = (
        report.format_scenarios(table, drift),
        report.format_family(family),
        report.format_study(study, params.alpha, params.batch_rows),
    )
    for text in texts:
        echo("")
        echo(text)
    echo("")

    files = [
        *figures,
        *(out_dir / f"report_{name}.html" for name in scenarios if params.html_reports),
        scenarios_csv,
        study_csv,
    ]
    echo(f"Logging to MLflow (experiment {EXPERIMENT}) …")
    record = report.run_record(params, claims, drift, quality, scenarios, files)
    run_id = sidecar.submit(log_run_record, EXPERIMENT, record).result()
    return LabResult(
        lab="drift",
        question=QUESTION,
        claims=claims,
        artifacts=[artifact_path(f) for f in files],
        mlflow={"experiment": EXPERIMENT, "run_id": run_id},
    )


def family_alarms(
    model: Any,
    params: DriftParams,
    threshold_rule: Callable[[float, int], float],
    draw: Callable[..., pd.DataFrame],
    trials: int,
    part: int,
) -> FamilyAlarms:
    """The detector, as the scenarios run it, on ``trials`` independent pairs of no-drift
    batches (a fresh reference each time; ``part`` picks the seeds): how many raise any alarm."""
    n = params.batch_rows
    # Two big draws sliced into batches: rows are independent, so the pairs are too.
    refs = _with_predictions(model, draw(n * trials, seed=params.seed * 1000 + 7 + 2 * part))
    curs = _with_predictions(model, draw(n * trials, seed=params.seed * 1000 + 8 + 2 * part))
    alarms, threshold, columns = 0, 0.0, 0
    for t in range(trials):
        rows = slice(t * n, (t + 1) * n)
        result = detect_drift(
            refs.iloc[rows],
            curs.iloc[rows],
            monitored=[TARGET, PROBA],
            alpha=params.alpha,
            threshold_rule=threshold_rule,
        )
        alarms += bool(result.drifted)
        threshold, columns = result.columns[0].threshold, len(result.columns)
    return FamilyAlarms(trials, alarms, columns, threshold, params.alpha)


# --- the model's predictions, beside the features -------------------------------------------


def _with_predictions(model: Any, frame: pd.DataFrame) -> pd.DataFrame:
    """``frame`` plus the model's churn probability and label: prediction drift needs them."""
    x, _ = split_xy(frame)
    out = frame.copy()
    out[PROBA] = model.predict_proba(x)[:, 1]
    out[LABEL] = (out[PROBA] >= 0.5).astype(int)
    return out
