"""What people look at: the versions table, ``dvc metrics diff``, the alias moves, the plot.

Everything here is drawn from :class:`~labs.versioning.claims.Evidence`, the numbers the lab
measured; nothing is computed again.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from labs.common.plots import from_zero, new_figure, save_figure, unit_interval
from labs.common.registry import CHAMPION, AliasMove
from labs.common.tables import markdown_table
from labs.versioning.claims import Evidence
from labs.versioning.versions import METRIC, METRICS_FILE, TRAIN_DATA
from labs.versioning.writers import writer_setting

PLOT_TITLES = (
    f"Holdout {METRIC} by version (blue: in the registry)",
    "champion alias over time (audit log)",
)


def version_table(e: Evidence, aliases: Mapping[str, str]) -> list[dict[str, str]]:
    """One row per version the lab made: data hash, git commit, model version, alias, metric.

    ``aliases`` maps each alias of the registered model to its version, as it ends up.
    """
    by_version: dict[str, list[str]] = {}
    for alias, number in aliases.items():
        by_version.setdefault(str(number), []).append(alias)

    def row(
        version: str,
        change: str,
        commit: str = "",
        data: str = "",
        model: str = "",
        number: str = "",
        metric: float | None = None,
    ) -> dict[str, str]:
        return {
            "version": version,
            "change": change,
            "git commit": commit[:8],
            "data md5": data[:8],
            "model sha256": model[:8],
            "registry": f"v{number}" if number else "—",
            "alias": ", ".join(sorted(by_version.get(number, []))) or "—",
            METRIC: "—" if metric is None else f"{metric:.6f}",
        }

    rows = [
        row(
            f"data {dv.label}",
            f"generate n_rows={dv.rows}, seed={dv.seed}",
            dv.commit,
            dv.md5[TRAIN_DATA],
            dv.model_sha256,
            e.numbers[dv.label],
            dv.metrics[METRIC],
        )
        for dv in (e.v1, e.v2)
    ]
    rows.append(
        row(
            "v1 reproduced",
            "teammate: dvc pull, dvc repro --force (train → evaluate)",
            e.v1.commit,
            e.v1.md5[TRAIN_DATA],
            e.reproduced["model_sha256"],
            metric=e.reproduced["metrics"][METRIC],
        )
    )
    for exp in e.experiments["rows"]:
        if exp["name"] != "baseline":
            change = " ".join(e.experiments_asked.get(exp["name"], []))
            rows.append(
                row(
                    f"exp {exp['name']}",
                    f"dvc exp run -S {change}",
                    exp["rev"],
                    e.v1.md5[TRAIN_DATA],
                    metric=exp["metrics"].get(METRIC),
                )
            )
    for w in e.concurrent["writers"]:
        rows.append(
            row(
                f"writer {w['writer']}",
                f"train.C={writer_setting(w['writer'])} on data v2, registered concurrently",
                model=w["model_sha256"],
                number=w["version"],
            )
        )
    return rows


def format_report(
    table: list[dict[str, str]],
    metrics_diff: Mapping[str, Any],
    moves: Sequence[AliasMove],
    timings: Mapping[str, float],
) -> str:
    """The printout: versions, what changed between the data versions, alias moves, timings."""
    diff_rows = [
        {
            "metric": key,
            "v1": f"{d.get('old')}",
            "v2": f"{d.get('new')}",
            "change": f"{d['diff']:+.6f}"
            if isinstance(d.get("diff"), float)
            else str(d.get("diff")),
        }
        for key, d in sorted(metrics_diff.get(METRICS_FILE, {}).items())
    ]
    move_lines = [
        f"  {m.action:<8} {m.alias:<10} {_v(m.from_version):>5} → {_v(m.to_version):<5}  "
        + m.reason
        for m in moves
    ]
    return "\n".join(
        [
            f"Versions (data md5 = DVC's hash of {TRAIN_DATA}; registry = MLflow model version):",
            markdown_table(table),
            "",
            "dvc metrics diff v1 v2 (each on its own holdout):",
            markdown_table(diff_rows),
            "",
            "Alias moves (audit log — MLflow keeps no history of them):",
            *move_lines,
            "",
            "Timings: " + ", ".join(f"{k[:-2]} {v:.1f} s" for k, v in timings.items()),
        ]
    )


def _v(version: str | None) -> str:
    return "—" if version is None else f"v{version}"


def write_outputs(
    out_dir: Path,
    table: list[dict[str, str]],
    metrics_diff: Mapping[str, Any],
    e: Evidence,
    audit_log: Path,
    timings: Mapping[str, float],
) -> list[Path]:
    """versions.md, versions.png (+ what it draws), experiments.json, and the audit log if a
    move was logged (aliases moved around the audited functions leave none)."""
    report = out_dir / "versions.md"
    report.write_text(
        "# Versions made by the versioning lab\n\n"
        + format_report(table, metrics_diff, e.moves, timings)
        + "\n"
    )
    exps = out_dir / "experiments.json"
    exps.write_text(json.dumps(e.experiments["raw"], indent=2) + "\n")
    figure = plot_versions(out_dir / "versions.png", table, e.moves)
    return [report, figure, exps, *([audit_log] if audit_log.exists() else [])]


def plot_versions(path: Path, table: list[dict[str, str]], moves: Sequence[AliasMove]) -> Path:
    """Left: the metric of every scored version on a 0–1 axis (registered ones in blue, with
    their alias). Right: which version ``champion`` pointed to after each move."""
    scored = [r for r in table if r[METRIC] != "—"]
    values = [float(r[METRIC]) for r in scored]
    fig, (left, right) = new_figure(1, 2, size=(11, 4.2), width_ratios=[3, 2])
    colours = ["#4c72b0" if r["registry"] != "—" else "#999999" for r in scored]
    left.bar(range(len(scored)), values, color=colours, label=f"holdout {METRIC}")
    for i, r in enumerate(scored):
        label = r["registry"] if r["registry"] != "—" else ""
        if r["alias"] != "—":
            label += f"\n@{r['alias']}"
        left.annotate(
            f"{values[i]:.4f}\n{label}".strip(),
            (i, values[i]),
            ha="center",
            va="bottom",
            fontsize=8,
        )
    left.set_xticks(range(len(scored)), [r["version"] for r in scored], rotation=20, ha="right")
    unit_interval(left, label=f"holdout {METRIC}")
    left.set_title(PLOT_TITLES[0])

    champion = [m for m in moves if m.alias == CHAMPION and m.to_version]
    steps = [int(m.to_version) for m in champion if m.to_version]
    right.step(range(len(steps)), steps, where="post", marker="o", label=CHAMPION)
    right.set_xticks(range(len(steps)), [m.action for m in champion])
    right.set_yticks(sorted(set(steps)), [f"v{s}" for s in sorted(set(steps))])
    from_zero(right, headroom=1.25)
    right.set(title=PLOT_TITLES[1], ylabel="model version")
    save_figure(fig, path, dpi=100)
    return path
