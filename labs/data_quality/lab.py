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
4. **Versioned data**: each batch is written with its md5; going back to the pre-incident
   version reproduces the pre-incident metric exactly.
"""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import Executor
from pathlib import Path

import pandas as pd

from labs.common.catalogue import topic
from labs.common.data import CATEGORICAL_FEATURES, FEATURES, TARGET, make_churn_data
from labs.common.model import TrainParams, quality_metrics, train_model
from labs.common.results import LabResult, artifact_path
from labs.common.schema import BatchExpectations, batch_schema, quarantine
from labs.common.sidecar import sidecar as labs_sidecar
from labs.common.tracking import log_run_record, warm_up_tracking
from labs.data_quality import report
from labs.data_quality.claims import make_claims
from labs.data_quality.params import DataQualityParams
from labs.data_quality.steps import (
    CHARGES,
    EXPERIMENT,
    KEY,
    checkout,
    gate,
    hotfix_cents,
    loses_nothing,
    plant_problems,
    probabilities,
    rename_categories,
    replay_stream,
    signature_verdicts,
    unit_change,
    with_ids,
    write_manifest,
    write_version,
)

QUESTION = topic("data_quality").question


def run(
    params: DataQualityParams, out_dir: Path, echo: Callable[[str], None] = lambda _: None
) -> LabResult:
    """Replay the incident and measure every claim."""
    # The sidecar (a process on the other core, see below) is killed, not awaited, if the
    # lab stops early: Ctrl-C takes effect at once.
    with labs_sidecar() as sidecar:
        return _run(params, out_dir, echo, sidecar)


def _run(
    params: DataQualityParams, out_dir: Path, echo: Callable[[str], None], sidecar: Executor
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
    )

    # --- 1. The contract reports every failure at once (lazy validation). -------------------
    echo("Validating a clean batch and a dirty one against the contract …")
    clean = with_ids(make_churn_data(params.batch_rows, seed=seed + 2), first_id=10_000)
    clean_split = gate(clean, expectations)
    dirty = plant_problems(
        with_ids(make_churn_data(params.batch_rows, seed=seed + 3), first_id=20_000),
        params.dirty_rate,
        seed,
    )
    one_pass = _one_pass_checks(dirty.frame)

    # --- 2. The gate: valid + quarantined = input; too many bad rows → refused whole. -------
    dirty_split = gate(dirty.frame, expectations)
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
    bad_split = gate(bad.frame, expectations)

    # --- 3. The incident: contract, coarse range check, distribution checks. ---------------
    echo("The incident: gating the unit changes …")
    incident_split = gate(incident, expectations)
    kept_incident = quarantine(
        incident_split.quarantined,
        list(incident_split.refusal(params.max_bad_share)),
        out_dir / "quarantine",
        "incident-batch",
    )
    # "Coarse range check" = the contract without batch-level expectations.
    coarse = {name: gate(batch) for name, batch in factors.items()}
    with_medians = {name: gate(batch, expectations) for name, batch in factors.items()}
    # The hotfix: a versioned conversion before the gate.
    fixed = hotfix_cents(incident, params.renamed_categories)
    fixed_split = gate(fixed, expectations)
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
        max_bad_share=params.max_bad_share,
        seed=seed + 5,
    )

    # --- 4. Versioned data: md5 per version; going back reproduces the metric. --------------
    versions_dir = out_dir / "data"
    entries = [
        write_version(before, versions_dir, "v1-before-incident"),
        write_version(incident, versions_dir, "v2-incident"),
        write_version(dirty_split.quarantined, versions_dir, "quarantine-dirty-batch"),
        write_version(fixed, versions_dir, "v3-hotfix-cents-to-euros"),
    ]
    metric_before = quality_metrics(before[TARGET], p_before)["roc_auc"]
    for entry, metric in zip(entries, (metric_before, None, None, None), strict=True):
        entry["roc_auc"] = metric
    write_manifest(entries, versions_dir)
    restored = checkout(versions_dir, "v1-before-incident")
    metric_restored = quality_metrics(restored[TARGET], probabilities(model, restored))["roc_auc"]

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
        metric_restored=metric_restored,
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
        versions_dir / "versions.json",
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


def _one_pass_checks(frame: pd.DataFrame) -> list[str]:
    """The kinds of failure one lazy pandera pass reports (no second pass, no gate logic)."""
    import pandera.errors

    try:
        batch_schema(key=KEY).validate(frame, lazy=True)
    except pandera.errors.SchemaErrors as err:
        checks = err.failure_cases["check"].astype(str)
    else:
        return []
    kinds = {
        "missing": checks.str.startswith("not_nullable"),
        "out_of_range": checks.str.startswith("in_range"),
        "unknown_category": checks.str.startswith("isin"),
        "wrong_type": checks.str.startswith("coerce_dtype"),
        "duplicate_key": checks == "field_uniqueness",
        "lifetime_rule": checks == "tenure_within_lifetime",
    }
    return sorted(k for k, hit in kinds.items() if hit.any())


def _comparable(batch: pd.DataFrame) -> pd.DataFrame:
    """Features and label only, categories as plain strings: what the drift test compares."""
    out = batch[[*FEATURES, TARGET]].copy()
    for column in CATEGORICAL_FEATURES:
        out[column] = out[column].astype(str)
    return out
