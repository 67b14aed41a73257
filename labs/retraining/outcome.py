"""What a retraining run decided, on which numbers: the trigger decision and the outcome
(with its one-line log headline and the Markdown the flow publishes)."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from labs.common.tables import markdown_table


@dataclass(frozen=True)
class Decision:
    """Whether to retrain, and why (every trigger that fired, with its number)."""

    retrain: bool
    reasons: list[str]
    drift_share: float
    drifted_features: list[str]
    champion_roc_auc_on_batch: float | None
    new_rows: int


@dataclass(frozen=True)
class Outcome:
    """What one retraining run decided, on which numbers (the flow's return value)."""

    action: str  # "promoted" | "kept" | "skipped"
    reasons: list[str]
    champion_version: str | None  # after the decision
    challenger_version: str | None
    champion_score: float | None
    challenger_score: float | None
    margin: float
    absolute_floor: float
    mlflow_run_id: str
    decision: dict[str, Any] = field(default_factory=dict)
    champion_before: str | None = None  # the champion the challenger was compared with
    holdout_rows: int = 0  # the rows both models were scored on
    holdout_seen_in_training: int = 0  # of those, rows the challenger was trained on

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def headline(self) -> str:
        """One line for the run log: the action and the numbers that decided it."""
        champion, challenger = score_text(self.champion_score), score_text(self.challenger_score)
        return (
            f"{self.action}: champion v{self.champion_version or '—'} (holdout ROC-AUC "
            f"champion {champion}, challenger {challenger}; "
            f"margin {self.margin:g}, floor {self.absolute_floor:g})"
        )

    def markdown(self) -> str:
        """The decision as Markdown (the flow's Prefect artifact): a table, then the reasons."""
        rows = [
            {"model": role, "version": version, "holdout ROC-AUC": auc}
            for role, version, auc in (
                ("champion", self.champion_before, self.champion_score),
                ("challenger", self.challenger_version, self.challenger_score),
            )
        ]
        reasons = "\n".join(f"- {r}" for r in self.reasons)
        return (
            f"## Retraining decision: **{self.action}** → champion "
            f"v{self.champion_version or '—'}\n\n{markdown_table(rows)}\n\n"
            f"Promote only if challenger ≥ champion + margin **{self.margin:g}** and ≥ floor "
            f"**{self.absolute_floor:g}**.\n\n{reasons}\n\nMLflow run `{self.mlflow_run_id}`\n"
        )


@dataclass(frozen=True)
class Champion:
    version: str | None
    model: Any


def score_text(value: float | None) -> str:
    """A score for a log line: three decimals, or 'none'."""
    return "none" if value is None else f"{value:.3f}"
