"""The cicd lab's table (printout and Markdown) and its plot: every candidate's gate numbers."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from labs.cicd.changes import Trained
from labs.cicd.gate import GateDecision, GateThresholds
from labs.common.tables import markdown_table, text_table


def rows(
    trained: dict[str, Trained],
    decisions: dict[str, GateDecision],
    champion: Trained,
    margin: float,
) -> list[dict[str, Any]]:
    """One row per candidate: offline and holdout scores, the gain, the verdict."""
    base = champion.gate_metrics["roc_auc"]
    out = []
    for name, t in trained.items():
        m = t.gate_metrics
        d = decisions.get(name)
        out.append(
            {
                "candidate": name,
                "offline AUC": m["offline_roc_auc"],
                "holdout AUC": m["roc_auc"],
                "accuracy": m["accuracy"],
                "gap": m["offline_holdout_gap"],
                "gain": m["roc_auc"] - base if name != "champion" else None,
                "margin": margin if name != "champion" else None,
                "gate": "production" if d is None else ("pass" if d.passed else "FAIL"),
                "failed checks": "" if d is None else ", ".join(c.name for c in d.failed),
            }
        )
    return out


def format_table(
    trained: dict[str, Trained],
    decisions: dict[str, GateDecision],
    champion: Trained,
    margin: float,
) -> str:
    return text_table(
        rows(trained, decisions, champion, margin),
        title="The gate's decisions (holdout = the next month, as production scores it)",
    )


def write_table(
    trained: dict[str, Trained],
    decisions: dict[str, GateDecision],
    champion: Trained,
    margin: float,
    path: Path,
) -> Path:
    body = markdown_table(rows(trained, decisions, champion, margin))
    reasons = "\n".join(f"- **{name}** — {d.reason}" for name, d in decisions.items())
    path.write_text(f"# Model gate\n\n{body}\n\n## Reasons\n\n{reasons}\n")
    return path


def plot_gate(
    trained: dict[str, Trained],
    decisions: dict[str, GateDecision],
    champion: Trained,
    thresholds: GateThresholds,
    path: Path,
) -> Path:
    """Offline vs holdout ROC-AUC per candidate, with the floor and champion + margin."""
    import numpy as np

    from labs.common.plots import new_figure, save_figure

    names = list(trained)
    offline = [trained[n].gate_metrics["offline_roc_auc"] for n in names]
    holdout = [trained[n].gate_metrics["roc_auc"] for n in names]
    x = np.arange(len(names))
    fig, ax = new_figure(size=(8.5, 4.5))
    ax.bar(x - 0.2, offline, width=0.4, label="offline (random split of training table)")
    ax.bar(x + 0.2, holdout, width=0.4, label="holdout (next month, as scored)")
    bar = champion.gate_metrics["roc_auc"] + thresholds.margin
    ax.axhline(thresholds.min_roc_auc, ls="--", c="grey", label="floor")
    ax.axhline(bar, ls=":", c="black", label="champion + margin")
    for i, n in enumerate(names):
        verdict = "prod" if n not in decisions else ("pass" if decisions[n].passed else "fail")
        ax.text(i, max(offline[i], holdout[i]) + 0.01, verdict, ha="center", fontsize=8)
    ax.set_xticks(x, names, rotation=20, ha="right")
    ax.set_ylim(0.4, 1.0)
    ax.set_ylabel("ROC-AUC")
    ax.set_title("Model gate: offline looks good, the holdout decides")
    ax.legend(loc="lower left")
    save_figure(fig, path)
    return path
