"""What people look at: the importance table, recall per contract type, and two plots — the
global importance under three methods (noise highlighted) and one customer's waterfall."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from labs.explainability import explain as ex

GLOBAL_TITLE = "Global importance, honest model (share of each method's total)"
METHOD_LABELS = (
    "truth (generator)",
    "SHAP mean |φ|",
    "permutation ΔAUC (holdout)",
    "MDI (impurity)",
)


def _importance_rows(
    models: dict[str, dict[str, Any]], truth: dict[str, float]
) -> list[dict[str, Any]]:
    honest, leaky = models["honest"], models["leaky"]
    shap_share = ex.shares(honest["shap_importance"])
    mdi_share = ex.shares(honest["mdi"])
    leak_share = ex.shares(leaky["shap_importance"])
    rows = []
    for c in ex.ranking(truth) + [ex.LEAK]:
        rows.append(
            {
                "column": c,
                "truth |logodds|": truth.get(c),
                "SHAP share": shap_share.get(c),
                "permutation ΔAUC": honest["permutation"].get(c, {}).get("mean"),
                "MDI share": mdi_share.get(c),
                "leaky: SHAP share": leak_share[c],
                "alone AUC": leaky["single_auc"][c],
            }
        )
    return rows


def _recall_rows(recall_rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [
        {"contract": r["group"], **{k: v for k, v in r.items() if k != "group"}}
        for r in recall_rows
    ]


def format_tables(
    models: dict[str, dict[str, Any]], truth: dict[str, float], recall_rows: list[dict[str, Any]]
) -> str:
    """The tables of the printout."""
    from labs.common.tables import text_table

    return "\n\n".join(
        [
            text_table(
                _importance_rows(models, truth),
                title="Importance per raw column (honest model; last columns: leaky model):",
            ),
            text_table(_recall_rows(recall_rows), title="Recall per contract type (honest model):"),
        ]
    )


def write_tables(
    models: dict[str, dict[str, Any]],
    truth: dict[str, float],
    recall_rows: list[dict[str, Any]],
    path: Path,
) -> Path:
    """The same tables as Markdown, for people and MLflow."""
    from labs.common.tables import markdown_table

    path.write_text(
        "# Explainability\n\n## Importance per raw column\n\n"
        + markdown_table(_importance_rows(models, truth))
        + "\n\n## Recall per contract type (honest model)\n\n"
        + markdown_table(_recall_rows(recall_rows))
        + "\n"
    )
    return path


def plot_importance(honest: dict[str, Any], truth: dict[str, float], path: Path) -> Path:
    """Grouped bars: truth, SHAP, permutation and MDI shares per column; the noise is marked."""
    import numpy as np

    from labs.common.plots import new_figure, save_figure

    columns = ex.ranking(truth)
    series = [
        ex.shares(truth),
        ex.shares(honest["shap_importance"]),
        {c: v["mean"] for c, v in honest["permutation"].items()},
        ex.shares(honest["mdi"]),
    ]
    # Permutation as a share too, but keep its sign: a column that helps nothing can be < 0.
    total = sum(max(v, 0.0) for v in series[2].values()) or 1.0
    series[2] = {c: v / total for c, v in series[2].items()}
    fig, ax = new_figure(size=(9.0, 4.6))
    x = np.arange(len(columns))
    width = 0.2
    for i, (label, values) in enumerate(zip(METHOD_LABELS, series, strict=True)):
        ax.bar(x + (i - 1.5) * width, [values[c] for c in columns], width, label=label)
    ax.set_xticks(x, columns, rotation=20, ha="right")
    top = 1.15 * max(max(v.values()) for v in series)
    noise = columns.index(ex.NOISE)
    ax.axvspan(noise - 0.5, noise + 0.5, color="#c44e52", alpha=0.12)
    ax.annotate(
        "pure noise: high under MDI,\n≈ 0 under permutation",
        xy=(noise + 1.5 * width, ex.shares(honest["mdi"])[ex.NOISE]),
        xytext=(noise - 3.0, 0.55 * top),
        arrowprops={"arrowstyle": "->", "color": "#c44e52"},
        fontsize=8,
        color="#c44e52",
    )
    ax.axhline(0.0, color="black", linewidth=0.8, label="_zero")
    ax.set(title=GLOBAL_TITLE, ylabel="share of total importance", ylim=(-0.05, top))
    ax.legend(loc="upper right")
    save_figure(fig, path)
    return path


def plot_local(local: dict[str, Any], path: Path) -> Path:
    """A waterfall for one customer: from the base value, each column's contribution, to the
    model's P(churn)."""
    from labs.common.plots import new_figure, save_figure

    values = local["values"]
    order = sorted(values, key=lambda c: -abs(values[c]))
    fig, ax = new_figure(size=(8.0, 4.4))
    running = local["base_value"]
    colours = []
    for c in order:
        colours.append("#c44e52" if values[c] > 0 else "#4c72b0")
    bottoms = []
    for c in order:
        bottoms.append(running)
        running += values[c]
    ax.bar(
        range(len(order)),
        [values[c] for c in order],
        bottom=bottoms,
        color=colours,
        label="contribution to P(churn)",
    )
    ax.axhline(local["base_value"], color="grey", linestyle="--", label="base value (mean P)")
    ax.axhline(local["output"], color="black", linestyle=":", label="this customer's P(churn)")
    for i, c in enumerate(order):
        ax.text(
            i,
            max(bottoms[i], bottoms[i] + values[c]) + 0.01,
            f"{values[c]:+.3f}",
            ha="center",
            fontsize=7,
        )
    names = [f"{c} = {local['features'][c]}" for c in order]
    ax.set_xticks(range(len(order)), names, rotation=25, ha="right")
    ax.set(
        title=f"Local explanation (SHAP waterfall), customer {local['customer']}",
        ylabel="P(churn)",
        ylim=(0, 1),
    )
    ax.legend(loc="lower right")
    save_figure(fig, path)
    return path
