"""Data management in MLOps — the upstream format change, replayed end to end.

A churn model is in production. One day the billing system starts sending ``monthly_charges``
in cents instead of euros and renames a payment method. Nothing crashes: the model's MLflow
signature checks column names and types, not meaning, so it happily scores the batch — and
flips the churn decision for most customers. That is the incident from the interview story.

Good data management would have caught it before the model saw it. We build the pieces and
measure each:

1. **A data contract** (pandera, ``labs.common.schema``): types, ranges, categories, missing
   values, a unique key, a cross-column rule; lazy validation reports every failure at once.
2. **A gate with quarantine**: the batch is split into valid rows and quarantined rows with
   the checks they failed — nothing lost, nothing duplicated — and a batch with too many bad
   rows is refused whole.
3. **The incident**: flip rates per unit factor (×2, ×3, ×100) through the model's signature;
   the contract refusing the cents; a distribution check catching ×2 and ×3, which a coarse
   range check lets through; the drift report pointing at the column; a versioned hotfix
   restoring the predictions, visible day by day in the monitoring metrics.
4. **Versioned data**: each batch is written with its md5 to a shared store; a teammate's
   separate process checks out the pre-incident version and reproduces its metric exactly.

The parts it demonstrates are parameters of :func:`run` (the gate, the one-pass validation,
the serving input check, the hotfix, the version store), so ``counterfactuals.py`` can swap in
broken ones and show each claim failing.
"""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import Executor
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from labs.common.catalogue import topic
from labs.common.data import CATEGORICAL_FEATURES, FEATURES, TARGET, make_churn_data
from labs.common.model import TrainParams, quality_metrics, train_model
from labs.common.results import LabResult, artifact_path
from labs.common.schema import BatchExpectations, quarantine
from labs.common.sidecar import sidecar as labs_sidecar
from labs.common.tracking import dump_model, log_run_record, warm_up_tracking
from labs.data_quality import report
from labs.data_quality.claims import make_claims
from labs.data_quality.params import DataQualityParams
from labs.data_quality.steps import (
    CHARGES,
    EXPERIMENT,
    Gate,
    Hotfix,
    gate,
    hotfix_units,
    loses_nothing,
    one_pass_checks,
    plant_problems,
    probabilities,
    reference_medians,
    rename_categories,
    replay_stream,
    signature_verdicts,
    unit_change,
    with_ids,
)
from labs.data_quality.versions import VersionStore, teammate_checks_out

QUESTION = topic("data_quality").question


@dataclass(frozen=True)
class Parts:
    """The parts the lab demonstrates; a counterfactual replaces one with a broken version."""

    gate: Gate = gate
    validate_once: Callable[[pd.DataFrame], list[str]] = one_pass_checks
    input_check: Callable[[pd.DataFrame], None] | None = None  # at serving, before the model
    hotfix: Hotfix = hotfix_units
    store: type = VersionStore


def run(
    params: DataQualityParams,
    out_dir: Path,
    echo: Callable[[str], None] = lambda _: None,
    *,
    gate: Gate = gate,
    validate_once: Callable[[pd.DataFrame], list[str]] = one_pass_checks,
    input_check: Callable[[pd.DataFrame], None] | None = None,
    hotfix: Hotfix = hotfix_units,
    store: type = VersionStore,
) -> LabResult:
    """Replay the incident and measure every claim.

    The keyword arguments are the parts under test: the row-level ``gate``, the one-pass
    validation ``validate_once``, an ``input_check`` the served model runs before predicting
    (none: only MLflow's signature), the ``hotfix`` conversion and the data-version ``store``.
    """
    parts = Parts(gate, validate_once, input_check, hotfix, store)
    # The sidecar (a process on the other core, see below) is killed, not awaited, if the
    # lab stops early: Ctrl-C takes effect at once.
    with labs_sidecar() as sidecar:
        return _run(params, out_dir, echo, sidecar, parts)


def _run(
    params: DataQualityParams,
    out_dir: Path,
    echo: Callable[[str], None],
    sidecar: Executor,
    parts: Parts,
) -> LabResult:
    out_dir.mkdir(parents=True, exist_ok=True)
    seed = params.seed
    # MLflow (~6 s to import and open its store) runs in a sidecar on the other core: it logs
    # the model with its signature and scores the incident batches through it, then logs the
    # lab's run at the end, while this process validates, trains and imports Evidently.
    sidecar.submit(warm_up_tracking)

    # --- Setup: the model, and the pre-incident batch as the source system sends it. -------
    echo("Training the churn model …")
    train = make_churn_data(params.train_rows, seed=seed)
    model = train_model(train, TrainParams(seed=seed))
    # The contract's batch-level expectations are learned once, from the training data.
    expectations = BatchExpectations.from_reference(train)
    medians = reference_medians(train)
    before = with_ids(make_churn_data(params.batch_rows, seed=seed + 1), first_id=0)
    p_before = probabilities(model, before)

    # The incident batches: the same customers, charges in other units.
    factors = {f"x{f:g}": unit_change(before, f, seed) for f in params.unit_factors}
    incident = rename_categories(
        unit_change(before, params.incident_factor, seed), params.renamed_categories
    )
    renamed_column = before.rename(columns={CHARGES: "monthly_charges_cents"})
    signature_future = sidecar.submit(
        signature_verdicts,
        model,
        train,
        {"before": before, **factors, "incident": incident, "renamed_column": renamed_column},
        parts.input_check,
    )

    # --- 1. The contract reports every failure at once (lazy validation). -------------------
    echo("Validating a clean batch and a dirty one against the contract …")
    clean = with_ids(make_churn_data(params.batch_rows, seed=seed + 2), first_id=10_000)
    clean_split = parts.gate(clean, expectations)
    dirty = plant_problems(
        with_ids(make_churn_data(params.batch_rows, seed=seed + 3), first_id=20_000),
        params.dirty_rate,
        seed,
    )
    one_pass = parts.validate_once(dirty.frame)

    # --- 2. The gate: valid + quarantined = input; too many bad rows → refused whole. -------
    dirty_split = parts.gate(dirty.frame, expectations)
    accounting = loses_nothing(dirty.frame, dirty_split)
    kept = quarantine(
        dirty_split.quarantined,
        [f"{k}: {v} rows" for k, v in dirty_split.reason_counts().items()],
        out_dir / "quarantine",
        "dirty-batch",
    )
    bad = plant_problems(
        with_ids(make_churn_data(params.batch_rows, seed=seed + 4), first_id=30_000),
        params.bad_batch_rate,
        seed + 1,
    )
    bad_split = parts.gate(bad.frame, expectations)

    # --- 3. The incident: contract, coarse range check, distribution checks. ---------------
    echo("The incident: gating the unit changes …")
    incident_split = parts.gate(incident, expectations)
    kept_incident = quarantine(
        incident_split.quarantined,
        list(incident_split.refusal(params.max_bad_share)),
        out_dir / "quarantine",
        "incident-batch",
    )
    # "Coarse range check" = the contract without batch-level expectations.
    coarse = {name: parts.gate(batch, None) for name, batch in factors.items()}
    with_medians = {name: parts.gate(batch, expectations) for name, batch in factors.items()}
    # The hotfix: a versioned conversion before the gate. It is not told the factor: it
    # estimates the unit from the batch against the training data's medians.
    fixed, hotfix_found = parts.hotfix(incident, medians)
    fixed_split = parts.gate(fixed, expectations)
    p_fixed = probabilities(model, fixed_split.valid)

    echo("Drift reports (Evidently) for the incident and the small factors …")
    from labs.common.drift import detect_drift

    reference = _comparable(train)
    drift = {
        name: detect_drift(
            reference,
            _comparable(batch),
            alpha=params.alpha,
            html_path=out_dir / "drift_incident.html" if name == "incident" else None,
        )
        for name, batch in (("incident", incident), *((n, factors[n]) for n in factors if
                                                       n != f"x{params.incident_factor:g}"))
    }  # fmt: skip

    echo("Replaying the daily stream: before, incident, hotfix …")
    stream = replay_stream(
        model,
        days=params.stream_days,
        rows_per_day=params.rows_per_day,
        incident_day=params.incident_day,
        hotfix_day=params.hotfix_day,
        factor=params.incident_factor,
        renames=params.renamed_categories,
        expectations=expectations,
        medians=medians,
        max_bad_share=params.max_bad_share,
        seed=seed + 5,
        gate_with=parts.gate,
        hotfix=parts.hotfix,
    )

    # --- 4. Versioned data: md5 per version in a shared store; a teammate goes back. ------
    store = parts.store(out_dir / "data")
    entries = [
        store.write(before, "v1-before-incident"),
        store.write(incident, "v2-incident"),
        store.write(dirty_split.quarantined, "quarantine-dirty-batch"),
        store.write(fixed, "v3-hotfix-cents-to-euros"),
    ]
    metric_before = quality_metrics(before[TARGET], p_before)["roc_auc"]
    for entry, metric in zip(entries, (metric_before, None, None, None), strict=True):
        entry["roc_auc"] = metric
    manifest = store.publish(entries)
    # The teammate is another process (the sidecar): it has the model file and the store's
    # address, nothing of this process's memory.
    model_file = out_dir / "model.skops"
    dump_model(model, model_file)
    echo("A teammate's process checks out the pre-incident version …")
    teammate = sidecar.submit(
        teammate_checks_out, parts.store, store.directory, "v1-before-incident", model_file
    ).result()

    echo("Waiting for the signature check (MLflow) …")
    signature = signature_future.result()
    verdicts = signature["verdicts"]

    claims = make_claims(
        params,
        before=before,
        p_before=p_before,
        verdicts=verdicts,
        clean_split=clean_split,
        dirty=dirty,
        dirty_split=dirty_split,
        one_pass=one_pass,
        accounting=accounting,
        bad_split=bad_split,
        incident_split=incident_split,
        coarse=coarse,
        with_medians=with_medians,
        drift=drift,
        fixed_split=fixed_split,
        p_fixed=p_fixed,
        stream=stream,
        entries=entries,
        metric_before=metric_before,
        teammate=teammate,
        hotfix_found=hotfix_found,
    )

    factor_table = report.factor_table(params, p_before, verdicts, coarse, with_medians, drift)
    factor_table.to_csv(out_dir / "unit_factors.csv", index=False)
    stream.to_csv(out_dir / "stream.csv", index=False)
    png = report.plot(factor_table, stream, params, out_dir / "incident.png")
    echo("")
    echo(report.format_tables(factor_table, stream, dirty_split))
    echo("")
    files = [
        png,
        out_dir / "drift_incident.html",
        out_dir / "unit_factors.csv",
        out_dir / "stream.csv",
        kept,
        kept.with_suffix(".reason.json"),
        kept_incident.with_suffix(".reason.json"),
        *([manifest] if manifest else []),
    ]
    echo(f"Logging to MLflow (experiment {EXPERIMENT}) …")
    record = report.run_record(params, claims, files, signature["run_id"])
    run_id = sidecar.submit(log_run_record, EXPERIMENT, record).result()
    return LabResult(
        lab="data_quality",
        question=QUESTION,
        claims=claims,
        artifacts=[artifact_path(f) for f in files],
        mlflow={"experiment": EXPERIMENT, "run_id": run_id},
    )


def _comparable(batch: pd.DataFrame) -> pd.DataFrame:
    """Features and label only, categories as plain strings: what the drift test compares."""
    out = batch[[*FEATURES, TARGET]].copy()
    for column in CATEGORICAL_FEATURES:
        out[column] = out[column].astype(str)
    return out
