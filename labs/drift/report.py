"""What the drift lab leaves for people: the scenario and study tables (printed and CSV), the
two plots (rates and scores on 0–1), and the MLflow record (one nested run per scenario)."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import asdict
from pathlib import Path
from typing import Any

import pandas as pd

from labs.common.data import PROBA, TARGET
from labs.common.drift import DriftResult
from labs.common.results import Claim, claim_metrics
from labs.common.tables import text_table
from labs.common.tracking import RunRecord
from labs.drift.claims import FamilyAlarms, critical_count, power_at, upper_bound
from labs.drift.study import METHOD_LABELS, StudyRow

QUALITY = ("accuracy", "roc_auc", "churn_rate")
CHOSEN_METHODS = ("cvm", "chi2_two_sample")  # the tests the lab's detector uses
STUDY_RATES = (
    ("no drift", "false_alarm_rate"),
    ("shift", "detection_rate"),
    ("tiny shift", "small_shift_detection_rate"),
)


def scenario_table(
    reference_quality: Mapping[str, float],
    quality: Mapping[str, Mapping[str, float]],
    drift: Mapping[str, DriftResult],
) -> pd.DataFrame:
    """One row per batch (the reference first): what the tests flagged, and the model's quality."""
    rows = [
        {
            "scenario": "reference",
            "drift_share": 0.0,
            "flagged_features": "",
            "target_drift": False,
            "prediction_drift": False,
            **{k: reference_quality[k] for k in QUALITY},
        }
    ]
    for name, result in drift.items():
        rows.append(
            {
                "scenario": name,
                "drift_share": result.drift_share,
                "flagged_features": " ".join(result.drifted_features),
                "target_drift": result[TARGET].drifted,
                "prediction_drift": result[PROBA].drifted,
                **{k: quality[name][k] for k in QUALITY},
            }
        )
    return pd.DataFrame(rows)


def study_table(study: list[StudyRow]) -> pd.DataFrame:
    """The resampling study, one row per test and batch size."""
    return pd.DataFrame([asdict(r) for r in study])


def format_scenarios(table: pd.DataFrame, drift: Mapping[str, DriftResult]) -> str:
    """The scenario table for the printout, then what each row means."""
    first = next(iter(drift.values()))
    rows = [
        {
            "scenario": row.scenario,
            "features drifted": row.flagged_features or None,
            "target": bool(row.target_drift),
            "pred.": bool(row.prediction_drift),
            "accuracy": row.accuracy,
            "ROC-AUC": row.roc_auc,
            "churn": row.churn_rate,
        }
        for row in table.itertuples()
    ]
    title = (
        f"Scenarios (feature tests at α={first.alpha:g}, Bonferroni: "
        f"p < {first.columns[0].threshold:.4f} per column)"
    )
    notes = [
        "  covariate: inputs moved, feature tests see it (the target drifts too: more",
        "             month-to-month customers really do churn more), the model still ranks well.",
        "  concept:   inputs look exactly as before — only quality on labelled data reveals it.",
        "  prior:     churn doubled; target and prediction drift fire, and so do features that",
        "             predict churn (P(x) is a new mix of churners and stayers). The model still",
        "             ranks well but under-predicts churn: re-calibrate or move the threshold.",
    ]
    return "\n".join([text_table(rows, title=title), *notes])


def format_family(family: FamilyAlarms) -> str:
    """The detector's own false-alarm rate, as one trial per batch pair."""
    rate = family.alarms / family.batches
    return (
        f"The detector's false alarms: {family.alarms} of {family.batches} no-drift batch pairs "
        f"raised an alarm on any of its {family.columns} columns ({rate:.1%}; 95 % upper bound "
        f"{upper_bound(family.alarms, family.batches):.1%}; budget α = {family.alpha:g}, "
        f"p < {family.column_threshold:.4f} per column).\n"
        f"  {critical_count(family.batches, family.alpha)} or more alarms would have shown a "
        f"rate above α; a true rate of 2α would have shown it with "
        f"{power_at(family.batches, family.alpha, 2 * family.alpha):.0%} power."
    )


def format_study(study: list[StudyRow], alpha: float, batch_rows: int | None = None) -> str:
    """Per test and batch size: false alarms, detection of the shift and of a tiny shift; then
    the detector's honest limit at the lab's own batch size (``batch_rows``)."""
    sizes = sorted({r.n for r in study})
    rows = []
    for method, label in METHOD_LABELS.items():
        cells = {r.n: r for r in study if r.method == method}
        for what, attr in STUDY_RATES:
            rows.append(
                {
                    "test": label if what == "no drift" else "",
                    "batch": what,
                    **{f"n={n}": getattr(cells[n], attr) for n in sizes},
                }
            )
    title = f"How far to trust an alert: share of columns flagged (α={alpha:g}), over resamples"
    return text_table(rows, title=title) + power_line(study, batch_rows)


def power_line(study: list[StudyRow], batch_rows: int | None) -> str:
    """What the detector misses at the lab's batch size: the question an interviewer asks."""
    cell = {(r.method, r.n): r for r in study}
    if ("cvm", batch_rows) not in cell:
        return ""
    ours, ks = cell["cvm", batch_rows], cell.get(("ks", batch_rows))
    caught = ours.small_shift_detection_rate
    line = (
        f"\nPower at this lab's batch size (n={batch_rows}): a tiny 0.1-SD numeric shift is "
        f"caught in {caught:.0%} of batches, so {1 - caught:.0%} slip through"
    )
    if ks is not None:
        line += f" (K-S on the same budget: {ks.small_shift_detection_rate:.0%})"
    return line + "; bigger batches or a longer window catch more."


def plot_scenarios(
    table: pd.DataFrame,
    reference_quality: Mapping[str, float],
    quality_drop_alert: float,
    path: Path,
) -> Path:
    """Left, what input monitoring sees (share of features flagged); right, what performance
    monitoring sees (ROC-AUC and accuracy on the labelled batch)."""
    from labs.common.plots import new_figure, save_figure, unit_interval

    rows = table[table["scenario"] != "reference"].reset_index(drop=True)
    x = list(range(len(rows)))
    fig, (left, right) = new_figure(1, 2, size=(11, 4.6))
    bars = left.bar(x, rows["drift_share"], label="share of features flagged")
    for i, row in rows.iterrows():
        marks = [
            m
            for m, on in (("target", row.target_drift), ("prediction", row.prediction_drift))
            if on
        ]
        text = (row.flagged_features.replace(" ", "\n") or "nothing") + (
            "\n+ " + " & ".join(marks) if marks else ""
        )
        left.annotate(text, (i, bars[i].get_height()), ha="center", va="bottom", fontsize=7)
    left.set_xticks(x, rows["scenario"])
    left.set_title("What input (feature) monitoring sees")
    unit_interval(left, label="share of features flagged")

    width = 0.38
    right.bar([i - width / 2 for i in x], rows["roc_auc"], width, label="ROC-AUC", color="#55a868")
    right.bar(
        [i + width / 2 for i in x], rows["accuracy"], width, label="accuracy", color="#c44e52"
    )
    reference_auc = reference_quality["roc_auc"]
    right.axhline(reference_auc, ls="--", c="#55a868", lw=1, label="reference ROC-AUC")
    right.axhline(
        reference_auc - quality_drop_alert,
        ls=":",
        c="grey",
        lw=1,
        label=f"alert: AUC −{quality_drop_alert:g}",
    )
    right.set_xticks(x, rows["scenario"])
    right.set_title("What performance monitoring sees (labelled batch)")
    unit_interval(right, label="score on the labelled batch")
    right.legend(loc="upper center", bbox_to_anchor=(0.5, -0.1), ncol=4, fontsize=7)
    fig.suptitle("Covariate drift shows in the inputs; concept drift only in the model's quality")
    save_figure(fig, path)
    return path


def plot_study(study: list[StudyRow], alpha: float, path: Path) -> Path:
    """False alarms with no drift (left) and detection of a tiny shift (right), per test,
    against batch size: the tests the detector uses solid, the others dashed."""
    from labs.common.plots import new_figure, save_figure, unit_interval

    fig, (left, right) = new_figure(1, 2, size=(11, 4.4), sharey=True)
    for method, label in METHOD_LABELS.items():
        rows = sorted((r for r in study if r.method == method), key=lambda r: r.n)
        style = "-" if method in CHOSEN_METHODS else "--"
        sizes = [r.n for r in rows]
        left.plot(sizes, [r.false_alarm_rate for r in rows], style, marker="o", label=label)
        right.plot(
            sizes, [r.small_shift_detection_rate for r in rows], style, marker="o", label=label
        )
    left.axhline(alpha, c="k", lw=0.8, ls=":", label=f"α = {alpha:g}")
    sizes = sorted({r.n for r in study})
    for ax, title in (
        (left, "False alarms (no drift)"),
        (right, "Detection of a tiny shift (0.1 SD)"),
    ):
        ax.set(xscale="log", xlabel="rows per batch", title=title)
        ax.set_xticks(sizes, [f"{n:,}" for n in sizes])
        ax.minorticks_off()
        unit_interval(ax)
    left.set_ylabel("share of columns flagged")
    left.legend(loc="upper right", fontsize=7)
    fig.suptitle("Choose the test on purpose: false alarms and sensitivity depend on batch size")
    save_figure(fig, path)
    return path


def run_record(
    params: Any,
    claims: list[Claim],
    drift: Mapping[str, DriftResult],
    quality: Mapping[str, Mapping[str, float]],
    scenarios: Mapping[str, Mapping[str, Any]],
    files: list[Path],
) -> RunRecord:
    """One parent run with the claims and files, one nested run per scenario."""
    return RunRecord(
        name="drift-lab",
        params=asdict(params),
        metrics=claim_metrics(claims),
        artifacts=[str(f) for f in files if f.suffix in (".png", ".csv")],
        children=[
            RunRecord(
                name=name,
                params={"scenario": name, **{k: str(v) for k, v in scenarios[name].items()}},
                metrics={
                    "drift_share": result.drift_share,
                    "n_drifted_features": len(result.drifted_features),
                    **{f"p_value.{c.column}": c.p_value for c in result.columns},
                    **{k: v for k, v in quality[name].items() if math.isfinite(v)},
                },
                artifacts=[str(f) for f in files if f.name == f"report_{name}.html"],
            )
            for name, result in drift.items()
        ],
    )
