"""What the data-quality lab leaves for people: the unit-factor table, the incident plot, the
printed tables and the MLflow run record."""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from labs.common.plots import new_figure, save_figure, unit_interval
from labs.common.results import Claim, claim_metrics
from labs.common.schema import BatchSplit
from labs.common.tables import text_table
from labs.common.tracking import RunRecord
from labs.data_quality.steps import CHARGES, flip_rate

if TYPE_CHECKING:
    from labs.data_quality.params import DataQualityParams


def factor_table(
    params: DataQualityParams,
    p_before: np.ndarray,
    verdicts: dict[str, Any],
    coarse: dict[str, BatchSplit],
    with_medians: dict[str, BatchSplit],
    drift: dict[str, Any],
) -> pd.DataFrame:
    """One row per unit factor: what the signature, the range check, the median expectation
    and the drift test (Cramér–von Mises) each said, and how many predictions flipped."""
    rows = []
    for factor in params.unit_factors:
        name = f"x{factor:g}"
        verdict = verdicts[name]
        test = drift.get(name) or drift["incident"]
        rows.append(
            {
                "factor": name,
                "signature_accepts": verdict["accepted"],
                "flip_rate": flip_rate(p_before, np.asarray(verdict.get("proba", p_before))),
                "range_check_rows_failed": len(coarse[name].quarantined),
                "range_check_refuses": bool(coarse[name].refusal(params.max_bad_share)),
                "median_check_refuses": bool(with_medians[name].refusal(params.max_bad_share)),
                "ks_p_value": test[CHARGES].p_value,
                "drift_flagged": CHARGES in test.drifted_features,
            }
        )
    return pd.DataFrame(rows)


def format_tables(table: pd.DataFrame, stream: pd.DataFrame, dirty: BatchSplit) -> str:
    """The printout: per factor, who catches what; the quarantine by reason; the stream."""
    factors = text_table(
        table.to_dict("records"),
        formats={"ks_p_value": lambda v: f"{v:.1e}"},
        title="Unit change in monthly_charges: who notices? (flip = churn decision changes)",
    )
    reasons = text_table(
        [{"failed check": k, "rows": v} for k, v in dirty.reason_counts().items()],
        title=f"Quarantine of the dirty batch ({len(dirty.quarantined)} of {dirty.rows} rows)",
    )
    days = text_table(
        stream[
            [
                "day",
                "phase",
                "accuracy_ungated",
                "gate_refused",
                "quarantined_rows",
                "accuracy_served",
            ]
        ].to_dict("records"),  # fmt: skip
        title="Daily stream: the model fed raw batches vs the gated path (— = batch refused)",
    )
    return "\n\n".join([factors, reasons, days])


def plot(table: pd.DataFrame, stream: pd.DataFrame, params: DataQualityParams, path: Path) -> Path:
    """Left: flip rate per unit factor and which check caught it. Right: daily accuracy."""
    fig, (left, right) = new_figure(1, 2, size=(11.5, 4.3))
    x = np.arange(len(table))
    left.bar(x, table["flip_rate"], color="#c44e52", label="predictions flipped")
    for i, row in table.iterrows():
        caught = [
            label
            for label, hit in (
                ("range", row.range_check_refuses),
                ("median", row.median_check_refuses),
                ("drift test", row.drift_flagged),
            )
            if hit
        ]
        left.annotate(
            "caught by: " + (", ".join(caught) or "nothing"),
            (i, row.flip_rate),
            ha="center",
            va="bottom",
            fontsize=7,
        )
    left.axhline(params.min_flip_rate, ls=":", c="grey", lw=1, label="claim threshold")
    left.set(
        xticks=list(x),
        xticklabels=list(table["factor"]),
        xlabel="monthly_charges unit factor (the signature accepts all)",
        title="An upstream unit change flips churn decisions",
    )
    unit_interval(left, label="share of customers whose decision flips")
    left.legend(loc="upper left")

    right.plot(stream["day"], stream["accuracy_ungated"], marker="o", label="model fed raw batch")
    right.plot(stream["day"], stream["accuracy_served"], marker="s", label="gated path (+ hotfix)")
    right.axvspan(params.incident_day - 0.5, params.hotfix_day - 0.5, color="#c44e52", alpha=0.1)
    right.axvline(params.hotfix_day - 0.5, ls="--", c="#55a868", lw=1, label="hotfix deployed")
    right.set(xlabel="day", title="Incident, refusal at the gate, recovery after the hotfix")
    unit_interval(right, label="accuracy on the day's labels")
    right.legend(loc="lower left")
    fig.suptitle("Data contract vs the cents incident")
    save_figure(fig, path)
    return path


def run_record(
    params: DataQualityParams, claims: list[Claim], files: list[Path], signature_run: str
) -> RunRecord:
    """One run: the params, every claim's numbers, the plot, tables and quarantine reasons."""
    return RunRecord(
        name="data-quality-lab",
        params={**asdict(params), "signature_run_id": signature_run},
        metrics=claim_metrics(claims),
        artifacts=[str(f) for f in files if f.suffix in (".png", ".csv", ".json")],
    )
