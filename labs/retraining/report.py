"""What the retraining lab leaves for people: the months as a table (printed and CSV) and the
"champion by month" plot (scores on 0–1, every decision under its month)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

from labs.common.tables import text_table

ACTION_LABELS = {"promoted": "PROMOTE", "kept": "KEEP (challenger worse)", "skipped": "no trigger"}
CHAMPION_SERIES = "champion ROC-AUC on the month's labelled data"
PROMOTED_SERIES = "challenger (holdout), promoted"
REJECTED_SERIES = "challenger (holdout), rejected"


@dataclass(frozen=True)
class Month:
    """One month's run: what the pipeline saw and decided."""

    month: int
    story: str
    action: str
    reasons: list[str]
    champion_before: str | None
    champion_after: str | None
    challenger: str | None
    champion_auc_on_batch: float | None
    champion_score: float | None
    challenger_score: float | None
    holdout_rows: int = 0
    holdout_seen_in_training: int = 0


def write_months(months: Sequence[Month], path: Path) -> Path:
    """One row per month, every field (reasons joined), as CSV."""
    import pandas as pd

    rows = [asdict(m) | {"reasons": " | ".join(m.reasons)} for m in months]
    pd.DataFrame(rows).to_csv(path, index=False)
    return path


def format_months(months: Sequence[Month]) -> str:
    """The printout: per month the champion's quality on the batch, the challenger's on the
    holdout, and what was decided."""
    rows = [
        {
            "month": m.month,
            "story": m.story,
            "champion AUC on batch": m.champion_auc_on_batch,
            "challenger AUC holdout": m.challenger_score,
            "decision": f"{m.action} → "
            + (f"champion v{m.champion_after}" if m.champion_after else "no champion"),
        }
        for m in months
    ]
    return text_table(rows)


def plot_months(months: Sequence[Month], quality_threshold: float, path: Path) -> Path:
    """The champion's quality month by month, each challenger, the trigger line, each decision."""
    from labs.common.plots import new_figure, save_figure, unit_interval

    nan = float("nan")
    x = [m.month for m in months]
    fig, ax = new_figure(size=(8.5, 4.8))
    ax.plot(
        x,
        [nan if m.champion_auc_on_batch is None else m.champion_auc_on_batch for m in months],
        "o-",
        label=CHAMPION_SERIES,
    )
    for action, label, colour in (
        ("promoted", PROMOTED_SERIES, "#55a868"),
        ("kept", REJECTED_SERIES, "#c44e52"),
    ):
        ax.plot(
            x,
            [m.challenger_score if m.action == action else nan for m in months],
            "D",
            ms=8,
            color=colour,
            label=label,
        )
    ax.axhline(
        quality_threshold,
        ls="--",
        c="grey",
        lw=1,
        label=f"retrain trigger: ROC-AUC < {quality_threshold:g}",
    )
    ax.set_xticks(
        x,
        [
            f"month {m.month}\n{m.story}\n{ACTION_LABELS[m.action]}"
            + (f"\nchampion v{m.champion_after}" if m.champion_after else "")
            for m in months
        ],
    )
    ax.tick_params(axis="x", labelsize=7)
    unit_interval(ax, label="ROC-AUC")
    ax.set_title("Retrain on evidence; promote only a better model")
    ax.legend(loc="lower left")
    save_figure(fig, path)
    return path
