"""What the lab leaves for people: one figure (distinct results before and after each fix;
DVC stages run per ``dvc repro``) and a Markdown table of what the MLflow run records."""

from __future__ import annotations

from pathlib import Path

from labs.common.plots import from_zero, new_figure, save_figure
from labs.common.tables import markdown_table
from labs.reproducibility.claims import Measurements

NAIVE, FIXED = "as usually written", "with the fix"


def distinct_results(m: Measurements) -> dict[str, tuple[int, int]]:
    """Per hazard: how many distinct results the same computation gave (naive, fixed)."""
    sorted_orders = len({tuple(o["sorted"]) for o in m.orders})
    return {
        "seed\n(same vs other)": (
            len({m.first.model_sha256, m.other.model_sha256}),
            len({m.first.model_sha256, m.second.model_sha256}),
        ),
        "BLAS threads": (m.distinct_dots, max(len(set(v)) for v in m.dots.values())),
        "worker seeds\n(n_jobs)": (
            m.seeding["distinct_global_workers"],
            m.seeding["distinct_spawned"],
        ),
        "set order\n(PYTHONHASHSEED)": (
            len({tuple(o["unsorted"]) for o in m.orders}),
            sorted_orders,
        ),
        "float sum\norder": (m.sums["distinct_sum"], m.sums["distinct_fsum"]),
    }


def plot_distinct_results(m: Measurements, path: Path) -> Path:
    """Left: distinct results per hazard, naive vs fixed. Right: stages run per dvc repro."""
    fig, (left, right) = new_figure(1, 2, size=(11, 4.2))
    rows = distinct_results(m)
    x = range(len(rows))
    width = 0.38
    left.bar([i - width / 2 for i in x], [v[0] for v in rows.values()], width, label=NAIVE)
    left.bar([i + width / 2 for i in x], [v[1] for v in rows.values()], width, label=FIXED)
    left.axhline(1, c="k", lw=0.8, ls=":", label="1 = reproducible")
    left.set_xticks(list(x), list(rows), fontsize=7)
    left.set(ylabel="distinct results", title="Same computation, how many different answers?")
    from_zero(left)
    left.legend(loc="upper right")

    d = m.dvc
    steps = {f"after {d.changed_param}": len(d.first), "dvc repro again": len(d.second)}
    right.bar(list(steps), list(steps.values()), color="#55a868", label="stages run")
    right.axhline(len(d.stages), c="grey", lw=0.8, ls="--", label=f"all {len(d.stages)} stages")
    right.set(ylabel="stages run", title="dvc repro runs only what changed")
    right.set_ylim(0, len(d.stages) + 0.5)
    right.legend(loc="upper right")
    fig.suptitle("Reproducibility: one answer per input — once the hidden inputs are pinned")
    save_figure(fig, path)
    return path


def write_provenance_table(m: Measurements, path: Path) -> Path:
    """A Markdown table: each recorded input, its value, and what the rebuild found (or why
    it was refused). A field the run did not record shows as "not recorded"."""
    rec = m.recorded

    def got(key: str, width: int = 16) -> str:
        return str(rec[key])[:width] if rec.get(key) else "not recorded"

    r = m.rebuild
    refused = r if isinstance(r, str) else None
    rows = [
        {"input": "git commit", "recorded in the run": got("git_commit", 12),
         "rebuild": refused or f"worktree at {r.commit[:12]}"},
        {"input": "uncommitted changes", "recorded in the run": got("git_dirty"), "rebuild": "—"},
        {"input": "requirements.lock sha256",
         "recorded in the run": got("requirements_lock_sha256"), "rebuild": "—"},
        *({"input": f"data md5 ({role})", "recorded in the run": got(f"data.{role}.md5", 32),
           "rebuild": "—" if refused else _same(r.data_md5_rebuilt.get(role) == rec.get(
               f"data.{role}.md5"))}
          for role in ("train", "holdout")),
        {"input": "train params + seed",
         "recorded in the run": ", ".join(f"{k.removeprefix('param.train.')}="
                                          f"{v}" for k, v in sorted(rec.items())
                                          if k.startswith("param.train.")),
         "rebuild": "—" if refused else "same params"},
        {"input": "platform", "recorded in the run": f"Python {got('python')}, "
         f"{got('machine')}, {got('blas', 60)}", "rebuild": "this machine"},
        {"input": "holdout ROC-AUC", "recorded in the run": m.first.metrics.get("roc_auc"),
         "rebuild": "—" if refused else _same(r.metrics_rebuilt == r.metrics_recorded)},
        {"input": "model sha256", "recorded in the run": m.first.model_sha256[:16],
         "rebuild": "—" if refused else _same(r.model_sha256_rebuilt == r.model_sha256_recorded)},
    ]  # fmt: skip
    run_id = rec.get("run_id") or (r.run_id if not refused else "")
    path.write_text(
        f"# What run {run_id} records, and its rebuild\n\n" + markdown_table(rows) + "\n"
    )
    return path


def _same(identical: bool) -> str:
    return "identical" if identical else "DIFFERENT"
