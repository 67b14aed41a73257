"""What the features lab leaves for people: the printed tables, ``tables.md`` and the plot."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from labs.features.pipeline import MISTAKE_LABELS, SkewResult

PCT = {"flipped": lambda v: f"{v:.1%}", "max |Δp|": lambda v: f"{v:.2g}"}


def _skew_rows(skew: dict[str, SkewResult]) -> list[dict[str, Any]]:
    what = {
        "shipped_pipeline": "the serving process (the logged artefact)",
        "faithful_handwritten": "hand-written, no mistake",
        **{f"only_{m}": f"hand-written: {label}" for m, label in MISTAKE_LABELS.items()},
        "handwritten": "hand-written, all three mistakes",
    }
    return [
        {
            "serving path": what[name],
            "flipped": r.flipped_share,
            "max |Δp|": r.max_abs_dp,
            "ROC-AUC": r.roc_auc,
            "AUC loss": r.auc_loss,
        }
        for name, r in skew.items()
    ]


def _pit_rows(pit: dict[str, dict[str, Any]]) -> list[dict[str, Any]]:
    return [
        {
            "training table": name.replace("_", " "),
            "future calls": pit[name]["future_calls_counted"],
            "offline AUC": pit[name]["offline_roc_auc"],
            "production AUC": pit[name]["production_roc_auc"],
            "gap": pit[name]["gap"],
        }
        for name in ("naive_join", "asof_join")
    ]


def format_tables(skew: dict[str, SkewResult], pit: dict[str, dict[str, Any]]) -> str:
    from labs.common.tables import text_table

    hand, shipped = skew["handwritten"], skew["shipped_pipeline"]
    naive, asof = pit["naive_join"], pit["asof_join"]
    return "\n\n".join(
        [
            text_table(_skew_rows(skew), formats=PCT, title="Training–serving skew (holdout):"),
            f"  The artefact flips {shipped.flipped_rows} labels "
            f"(max |Δp| {shipped.max_abs_dp:.2g}: float rounding at most). A hand-written\n"
            "  copy is exact only while it has no mistake: "
            f"with all three it flips {hand.flipped_share:.1%} of labels and costs "
            f"{hand.auc_loss:.3f} ROC-AUC.",
            text_table(_pit_rows(pit), title="Point in time (support calls from the event log):"),
            f"  The naive table promises ROC-AUC {naive['offline_roc_auc']:.3f} and delivers "
            f"{naive['production_roc_auc']:.3f}: {naive['future_calls_counted']} calls it counted "
            "had not\n  happened at the decision date. The as-of table promises "
            f"{asof['offline_roc_auc']:.3f} and delivers {asof['production_roc_auc']:.3f}.",
        ]
    )


def write_tables(skew: dict[str, SkewResult], pit: dict[str, dict[str, Any]], path: Path) -> Path:
    from labs.common.tables import markdown_table

    path.write_text(
        "# Lab features: measured\n\n## Training–serving skew\n\n"
        + markdown_table(_skew_rows(skew), formats=PCT)
        + "\n\n## Point in time\n\n"
        + markdown_table(_pit_rows(pit))
        + "\n"
    )
    return path


def plot_skew_and_leakage(
    skew: dict[str, SkewResult],
    pit: dict[str, dict[str, Any]],
    flip_alert: float,
    path: Path,
) -> Path:
    from labs.common.plots import new_figure, save_figure, unit_interval

    fig, (left, right) = new_figure(1, 2, size=(12, 4.6))
    names = list(skew)
    short = {
        "shipped_pipeline": "serving\nprocess",
        "faithful_handwritten": "hand,\nfaithful",
        "only_batch_statistics": "batch\nstatistics",
        "only_category_order": "category\norder",
        "only_missing_default": "missing\n→ 0",
        "handwritten": "hand,\nall three",
    }
    x = np.arange(len(names))
    flipped = left.bar(x - 0.2, [skew[n].flipped_share for n in names], 0.4, label="labels flipped")
    left.bar_label(flipped, fmt="{:.1%}", fontsize=7)
    left.bar(x + 0.2, [skew[n].max_abs_dp for n in names], 0.4, label="max |Δp|")
    left.axhline(flip_alert, ls=":", c="grey", lw=1, label="flip alert")
    left.set_xticks(x, [short[n] for n in names])
    unit_interval(left, label="share of holdout / probability")
    left.set_title("Training–serving skew: serving paths vs offline predictions")
    left.legend(loc="upper left")

    joins = ["naive_join", "asof_join"]
    xj = np.arange(len(joins))
    for shift, key, label in (
        (-0.2, "offline_roc_auc", "offline (validation)"),
        (0.2, "production_roc_auc", "production"),
    ):
        bars = right.bar(xj + shift, [pit[j][key] for j in joins], 0.4, label=label)
        right.bar_label(bars, fmt="{:.3f}", fontsize=7)
    right.set_xticks(xj, ["naive join\n(leaks future calls)", "as-of join\n(merge_asof)"])
    unit_interval(right, label="ROC-AUC")
    right.set_title("Point in time: offline promise vs production")
    right.legend(loc="lower right")
    fig.suptitle(
        "Ship the fitted feature pipeline; build training features as of the decision date"
    )
    save_figure(fig, path)
    return path
