"""One way to draw a lab's picture: the same style, one save function, axes that say what
they show, and a record of what was drawn that tests (and the evidence index) can read.

    fig, (left, right) = new_figure(1, 2)
    left.plot(x, y, label="ROC-AUC")
    left.set(ylim=(0, 1), ylabel="ROC-AUC", title="…")
    drawn = save_figure(fig, out_dir / "quality.png")   # PNG + quality.png.json

``save_figure`` writes the PNG and, beside it, ``<name>.png.json``: every axis's title,
labels, limits, and each line's, bar group's and reference line's label and data, read from
the figure object itself. A test asserts on that (what is drawn), never on the file size.
matplotlib is imported only when a figure is made.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

STYLE = {
    "figure.dpi": 100,
    "axes.grid": True,
    "grid.alpha": 0.3,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "axes.titlesize": 10,
    "axes.labelsize": 9,
    "legend.fontsize": 8,
    "xtick.labelsize": 8,
    "ytick.labelsize": 8,
}
# Colour-blind-safe palette, in the order series are drawn.
PALETTE = ("#4c72b0", "#dd8452", "#55a868", "#c44e52", "#8172b3", "#937860", "#da8bc3")


def new_figure(
    nrows: int = 1, ncols: int = 1, *, size: tuple[float, float] | None = None, **kwargs: Any
) -> tuple[Any, Any]:
    """A figure and its axes in the project style (``Agg`` backend: no screen needed)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from cycler import cycler

    width, height = size or (5.5 * ncols, 4.2 * nrows)
    with plt.rc_context({**STYLE, "axes.prop_cycle": cycler(color=PALETTE)}):
        fig, axes = plt.subplots(nrows, ncols, figsize=(width, height), **kwargs)
    return fig, axes


def unit_interval(ax: Any, *, axis: str = "y", label: str | None = None) -> None:
    """A rate, share or score axis: 0 to 1, never an arbitrary start that exaggerates."""
    setter = ax.set_ylim if axis == "y" else ax.set_xlim
    setter(0, 1.0)
    if label:
        (ax.set_ylabel if axis == "y" else ax.set_xlabel)(label)


def from_zero(ax: Any, *, axis: str = "y", headroom: float = 1.1) -> None:
    """A count or duration axis: from 0 to the data's maximum plus headroom."""
    low, high = ax.get_ylim() if axis == "y" else ax.get_xlim()
    top = max(high, 1e-9) * (headroom if high > 0 else 1)
    (ax.set_ylim if axis == "y" else ax.set_xlim)(0, top)


def describe_figure(fig: Any) -> dict[str, Any]:
    """What the figure shows, as plain data: per axis the title, labels, limits, scale, tick
    labels, and each line (label, x, y), bar container (label, heights) and legend entry."""
    axes = []
    for ax in fig.axes:
        lines = []
        for line in ax.get_lines():
            x, y = line.get_xdata(), line.get_ydata()
            lines.append(
                {
                    "label": str(line.get_label()),
                    "x": [_num(v) for v in x],
                    "y": [_num(v) for v in y],
                }
            )
        bars = [
            {
                "label": str(c.get_label()),
                "heights": [_num(p.get_height()) for p in c.patches],
            }
            for c in ax.containers
            if hasattr(c, "patches")
        ]
        legend = ax.get_legend()
        axes.append(
            {
                "title": ax.get_title(),
                "xlabel": ax.get_xlabel(),
                "ylabel": ax.get_ylabel(),
                "xlim": [_num(v) for v in ax.get_xlim()],
                "ylim": [_num(v) for v in ax.get_ylim()],
                "xscale": ax.get_xscale(),
                "yscale": ax.get_yscale(),
                "xticklabels": [t.get_text() for t in ax.get_xticklabels()],
                "lines": lines,
                "bars": bars,
                "legend": [t.get_text() for t in legend.get_texts()] if legend else [],
                "texts": [t.get_text() for t in ax.texts],
            }
        )
    title = fig._suptitle.get_text() if getattr(fig, "_suptitle", None) else ""
    return {"title": title, "axes": axes}


def save_figure(fig: Any, path: Path, *, dpi: int = 110) -> dict[str, Any]:
    """Write ``path`` (PNG) and ``path + '.json'`` (:func:`describe_figure`), close the figure,
    and return the description."""
    import matplotlib.pyplot as plt

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    drawn = describe_figure(fig)
    fig.tight_layout()
    fig.savefig(path, dpi=dpi)
    plt.close(fig)
    drawing_path(path).write_text(json.dumps(drawn, indent=1, allow_nan=False) + "\n")
    return drawn


def drawing_path(png: Path) -> Path:
    """Where :func:`save_figure` records what ``png`` shows."""
    return png.with_name(png.name + ".json")


def read_drawing(png: Path) -> dict[str, Any]:
    """The description :func:`save_figure` wrote for ``png``."""
    return json.loads(drawing_path(Path(png)).read_text())


def _num(value: Any) -> float | str | None:
    try:
        number = float(value)
    except (TypeError, ValueError):
        return str(value)  # categorical positions, dates
    return number if math.isfinite(number) else None
