"""The packaging table (printout and Markdown) and the picture comparing the packages."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from labs.common.tables import markdown_table, text_table
from labs.packaging.formats import FORMATS

COLUMNS = ("package", "size_kb", "cold_load_s", "one_row_ms", "batch_ms", "max_abs_dp", "flips")


def package_rows(
    probes: dict[str, dict[str, Any]],
    handlers: dict[str, dict[str, Any]],
    rest: dict[str, Any],
    forest: dict[str, Any],
    params: Any,
) -> list[dict[str, Any]]:
    """One row per package: file size, cold load (fresh process: imports + file; for the REST
    app launch to ``/ready``, for a handler the first call), median latencies, parity."""
    rows = []
    for fmt in FORMATS:
        p = probes[fmt]
        rows.append(
            _row(fmt, p["size_bytes"], p["load_s"], p["one_row_ms"], p["batch_ms"], p["parity"])
        )
    rows.append(
        _row("REST serving app", None, rest["ready_s"], rest["one_row_ms"], rest["batch_ms"],
             rest["parity"])
    )  # fmt: skip
    for kind, h in handlers.items():
        rows.append(
            _row(f"Lambda handler ({kind})", None, h["cold_s"], h["warm_ms"], h["batch_ms"],
                 h["parity"])
        )  # fmt: skip
    rows.append(
        _row(f"onnx, random forest ({params.forest_trees} trees)", forest["size_bytes"], None,
             None, None, forest)
    )  # fmt: skip
    return rows


def _row(
    name: str,
    size: int | None,
    load: float | None,
    one: float | None,
    batch: float | None,
    par: dict[str, Any],
) -> dict[str, Any]:
    return {
        "package": name,
        "size_kb": None if size is None else size / 1024,
        "cold_load_s": load,
        "one_row_ms": one,
        "batch_ms": batch,
        "max_abs_dp": par["max_abs_dp"],
        "flips": f"{par['label_flips']}/{par['rows']}",
    }


def format_table(rows: list[dict[str, Any]], *, markdown: bool = False) -> str:
    """The side-by-side table; |Δp| in scientific notation (0 means bit-identical)."""
    formats = {
        "size_kb": lambda v: "—" if v is None else f"{v:.1f}",
        "cold_load_s": lambda v: "—" if v is None else f"{v:.2f}",
        "one_row_ms": lambda v: "—" if v is None else f"{v:.3f}",
        "batch_ms": lambda v: "—" if v is None else f"{v:.2f}",
        "max_abs_dp": lambda v: "0" if v == 0 else f"{v:.1e}",
    }
    if markdown:
        return markdown_table(rows, COLUMNS, formats=formats)
    return text_table(
        rows,
        COLUMNS,
        formats=formats,
        title="Packages side by side (batch = the batch_rows request; cold = fresh process):",
    )


def plot_packages(rows: list[dict[str, Any]], path: Path) -> Path:
    """Three panels over the same packages: cold load, one-row latency, parity (max |Δp|)."""
    from labs.common.plots import new_figure, save_figure

    fig, (load_ax, lat_ax, par_ax) = new_figure(1, 3, size=(15, 4.6))
    timed = [r for r in rows if r["cold_load_s"] is not None]
    names = [r["package"] for r in timed]
    load_ax.bar(names, [r["cold_load_s"] for r in timed], label="cold load / start (s)")
    load_ax.set(title="Cold: fresh process to ready", ylabel="seconds")
    lat_ax.bar(names, [r["one_row_ms"] for r in timed], label="one-row latency (ms)")
    lat_ax.set(title="Warm: one row, median", ylabel="milliseconds (log)", yscale="log")
    floor = 1e-17  # log axis: an exact 0 is drawn at the floor and labelled
    every = [r["package"] for r in rows]
    dps = [max(r["max_abs_dp"], floor) for r in rows]
    par_ax.bar(every, dps, label="max |Δp| vs in-memory model")
    par_ax.set(
        title="Parity with the in-memory model", ylabel="max |Δp| (log)", yscale="log",
        ylim=(floor / 10, 1),
    )  # fmt: skip
    for i, r in enumerate(rows):
        if r["max_abs_dp"] == 0:
            par_ax.text(i, floor * 3, "exact", ha="center", fontsize=7)
        else:
            par_ax.text(i, r["max_abs_dp"] * 2, f"{r['flips']}\nflips", ha="center", fontsize=6)
    for ax in (load_ax, lat_ax, par_ax):
        ax.tick_params(axis="x", labelrotation=60)
        for label in ax.get_xticklabels():
            label.set_horizontalalignment("right")
    fig.suptitle("The same churn model, packaged every way")
    save_figure(fig, path)
    return path
