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

import multiprocessing
from collections.abc import Callable, Mapping
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from labs.common.catalogue import topic
from labs.common.data import CATEGORICAL_FEATURES, FEATURES, TARGET, make_churn_data
from labs.common.model import TrainParams, quality_metrics, train_model
from labs.common.results import Claim, LabResult, artifact_path
from labs.common.schema import BatchExpectations, batch_schema, quarantine
from labs.common.tracking import log_run_record, warm_up_tracking
from labs.data_quality import report
from labs.data_quality.steps import (
    CHARGES,
    EXPERIMENT,
    KEY,
    checkout,
    flip_rate,
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


@dataclass(frozen=True)
class DataQualityParams:
    """Parameters of the data-quality lab (``params.yaml`` → ``data_quality``)."""

    seed: int = 13
    train_rows: int = 3000
    batch_rows: int = 1000
    unit_factors: tuple[float, ...] = (2.0, 3.0, 100.0)
    incident_factor: float = 100.0
    renamed_categories: Mapping[str, Mapping[str, str]] = field(
        default_factory=lambda: {"payment_method": {"credit-card": "card"}}
    )
    dirty_rate: float = 0.05
    bad_batch_rate: float = 0.25
    max_bad_share: float = 0.10
    min_flip_rate: float = 0.30
    alpha: float = 0.05
    stream_days: int = 12
    rows_per_day: int = 300
    incident_day: int = 4
    hotfix_day: int = 8
    recovery_tolerance: float = 0.05

    def __post_init__(self) -> None:
        object.__setattr__(self, "unit_factors", tuple(float(f) for f in self.unit_factors))
        for name, least in (("train_rows", 200), ("batch_rows", 100), ("rows_per_day", 50)):
            if int(getattr(self, name)) < least:
                raise ValueError(
                    f"data_quality.{name} must be >= {least}, got {getattr(self, name)!r}"
                )
        if not self.unit_factors or any(f <= 0 or f == 1 for f in self.unit_factors):
            raise ValueError(
                f"data_quality.unit_factors must be > 0 and != 1, got {self.unit_factors!r}"
            )
        for name in ("dirty_rate", "bad_batch_rate", "max_bad_share", "min_flip_rate", "alpha"):
            if not 0 < float(getattr(self, name)) < 1:
                raise ValueError(
                    f"data_quality.{name} must be in (0, 1), got {getattr(self, name)!r}"
                )
        if not self.dirty_rate <= self.max_bad_share < self.bad_batch_rate:
            raise ValueError(
                "data_quality needs dirty_rate <= max_bad_share < bad_batch_rate, got "
                f"{self.dirty_rate}, {self.max_bad_share}, {self.bad_batch_rate}"
            )
        if not 0 < self.incident_day < self.hotfix_day < self.stream_days:
            raise ValueError(
                "data_quality needs 0 < incident_day < hotfix_day < stream_days, got "
                f"{self.incident_day}, {self.hotfix_day}, {self.stream_days}"
            )


def run(
    params: DataQualityParams, out_dir: Path, echo: Callable[[str], None] = lambda _: None
) -> LabResult:
    """Replay the incident and measure every claim."""
    out_dir.mkdir(parents=True, exist_ok=True)
    seed = params.seed
    # MLflow (~6 s to import and open its store) runs in a sidecar on the other core: it logs
    # the model with its signature and scores the incident batches through it, then logs the
    # lab's run at the end, while this process validates, trains and imports Evidently.
    sidecar = ProcessPoolExecutor(max_workers=1, mp_context=multiprocessing.get_context("spawn"))
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
    with sidecar:
        run_id = sidecar.submit(log_run_record, EXPERIMENT, record).result()
    return LabResult(
        lab="data_quality",
        question=QUESTION,
        claims=claims,
        artifacts=[artifact_path(f) for f in files],
        mlflow={"experiment": EXPERIMENT, "run_id": run_id},
    )


def make_claims(params: DataQualityParams, **m: Any) -> list[Claim]:
    """The interview answer's claims, each decided by the measurements in ``m``."""
    p_before, verdicts = m["p_before"], m["verdicts"]
    flips = {
        name: flip_rate(p_before, np.asarray(v["proba"]))
        for name, v in verdicts.items()
        if name.startswith("x") and v["accepted"]
    }
    factor_names = [f"x{f:g}" for f in params.unit_factors]
    clean, dirty, dirty_split = m["clean_split"], m["dirty"], m["dirty_split"]
    quarantined_rows = set(dirty_split.quarantined.index)
    planted_rows = set(dirty.planted)
    incident, fixed = m["incident_split"], m["fixed_split"]
    small = [n for n in factor_names if n != f"x{params.incident_factor:g}"]
    stream: pd.DataFrame = m["stream"]
    phase = stream.groupby("phase")
    before_acc = float(phase.get_group("before")["accuracy_ungated"].mean())
    incident_acc = float(phase.get_group("incident")["accuracy_ungated"].mean())
    hotfix_acc = float(phase.get_group("hotfix")["accuracy_served"].mean())
    entries = {e["name"]: e for e in m["entries"]}
    drift = m["drift"]
    return [
        Claim(
            "clean_batch_passes",
            "A clean batch passes the contract whole: nothing quarantined, not refused.",
            passed=len(clean.quarantined) == 0 and not clean.refusal(params.max_bad_share),
            measured={
                "rows": clean.rows,
                "quarantined_rows": len(clean.quarantined),
                "batch_reasons": list(clean.batch_reasons),
            },
        ),
        Claim(
            "lazy_reports_every_failure",
            "Lazy validation reports every kind of failure of a dirty batch in one pass.",
            passed=set(m["one_pass"]) >= set(dirty.planted.values()),
            measured={
                "planted_kinds": sorted(set(dirty.planted.values())),
                "reported_in_one_pass": sorted(m["one_pass"]),
            },
        ),
        Claim(
            "gate_loses_nothing",
            "The gate splits the batch row for row: valid + quarantined = input, every planted "
            "bad row quarantined with its reason, no clean row touched.",
            passed=m["accounting"]["missing_rows"] == 0
            and m["accounting"]["duplicated_rows"] == 0
            and m["accounting"]["rows_changed"] == 0
            and m["accounting"]["valid_rows"] + m["accounting"]["quarantined_rows"]
            == m["accounting"]["input_rows"]
            and quarantined_rows == planted_rows,
            measured={
                **m["accounting"],
                "planted_bad_rows": len(planted_rows),
                "planted_rows_caught": len(planted_rows & quarantined_rows),
                "clean_rows_quarantined": len(quarantined_rows - planted_rows),
                "bad_share": dirty_split.bad_share,
                "by_reason": dirty_split.reason_counts(),
            },
        ),
        Claim(
            "gate_refuses_above_threshold",
            f"A batch with more than {params.max_bad_share:.0%} bad rows is refused whole; "
            "one below it is accepted with its bad rows quarantined.",
            passed=bool(m["bad_split"].refusal(params.max_bad_share))
            and not dirty_split.refusal(params.max_bad_share),
            measured={
                "max_bad_share": params.max_bad_share,
                "accepted_batch_bad_share": dirty_split.bad_share,
                "refused_batch_bad_share": m["bad_split"].bad_share,
            },
        ),
        Claim(
            "signature_accepts_unit_change",
            "The MLflow signature accepts every unit change (it checks types, not meaning) and "
            f"predictions flip for ≥ {params.min_flip_rate:.0%} of customers; it rejects only "
            "a renamed column.",
            passed=all(verdicts[n]["accepted"] for n in (*factor_names, "incident"))
            and not verdicts["renamed_column"]["accepted"]
            and all(flips[n] >= params.min_flip_rate for n in factor_names),
            measured={f"flip_rate_{n}": flips.get(n, float("nan")) for n in factor_names}
            | {
                "incident_accepted": verdicts["incident"]["accepted"],
                "renamed_column_accepted": verdicts["renamed_column"]["accepted"],
            },
        ),
        Claim(
            "contract_refuses_the_incident",
            "The contract refuses the cents batch at the gate (range and category checks) and "
            "the drift report points at exactly the broken columns.",
            passed=bool(incident.refusal(params.max_bad_share))
            and incident.bad_share == 1.0
            and sorted(drift["incident"].drifted_features)
            == sorted([CHARGES, *params.renamed_categories]),
            measured={
                "bad_share": incident.bad_share,
                "by_reason": incident.reason_counts(),
                "drifted_features": drift["incident"].drifted_features,
            },
        ),
        Claim(
            "distribution_check_catches_small_factors",
            "×2 and ×3 pass the coarse range check, yet the batch-median expectation refuses "
            "them and K-S drift flags only monthly_charges.",
            passed=bool(small)
            and all(
                len(m["coarse"][n].quarantined) == 0
                and not m["coarse"][n].refusal(params.max_bad_share)
                and m["with_medians"][n].refusal(params.max_bad_share)
                and drift[n].drifted_features == [CHARGES]
                for n in small
            ),
            measured={
                f"range_check_rows_failed_{n}": len(m["coarse"][n].quarantined) for n in small
            }
            | {f"median_check_refused_{n}": bool(m["with_medians"][n].batch_reasons) for n in small}
            | {f"ks_p_value_{n}": drift[n][CHARGES].p_value for n in small},
        ),
        Claim(
            "hotfix_restores_predictions",
            "The versioned cents→euros conversion restores every prediction, and the daily "
            "accuracy recovers to its pre-incident level.",
            passed=len(fixed.quarantined) == 0
            and not fixed.refusal(params.max_bad_share)
            and flip_rate(p_before, m["p_fixed"]) == 0.0
            and float(np.max(np.abs(p_before - m["p_fixed"]))) < 1e-9
            and before_acc - incident_acc > params.recovery_tolerance
            and abs(hotfix_acc - before_acc) < params.recovery_tolerance
            and bool(
                phase.get_group("incident")
                .query(f"day < {params.hotfix_day}")["gate_refused"]
                .all()
            ),  # fmt: skip
            measured={
                "flip_rate_after_fix": flip_rate(p_before, m["p_fixed"]),
                "max_abs_delta_p": float(np.max(np.abs(p_before - m["p_fixed"]))),
                "accuracy_before": before_acc,
                "accuracy_incident_ungated": incident_acc,
                "accuracy_after_hotfix": hotfix_acc,
                "incident_days_refused": int(stream["gate_refused"].sum()),
            },
        ),
        Claim(
            "versioned_data_reproduces_metric",
            "Each data version is recorded by md5; checking out the pre-incident version "
            "reproduces the pre-incident ROC-AUC exactly, and the hotfixed batch is "
            "byte-identical to it.",
            passed=m["metric_restored"] == m["metric_before"]
            and entries["v3-hotfix-cents-to-euros"]["md5"] == entries["v1-before-incident"]["md5"]
            and entries["v2-incident"]["md5"] != entries["v1-before-incident"]["md5"],
            measured={
                "roc_auc_recorded": m["metric_before"],
                "roc_auc_checked_out": m["metric_restored"],
                **{f"md5_{name}": e["md5"] for name, e in entries.items()},
            },
        ),
    ]


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
