"""Evidently reports as HTML a browser opens quickly: the data in each file, Evidently's
JavaScript bundle and icon font once per folder.

A self-contained Evidently report is ~4.2 MB, of which 3.5 MB are the same bundle in every
file. :func:`save_report_html` writes the report with the bundle and font as shared files in
``evidently/`` beside it (the folder mode of Evidently's own HTML templates), ~0.5 MB a report.
MLflow's artifact viewer shows an HTML file on its own (no sibling files), so the copy logged
to MLflow is made self-contained again by :func:`self_contained_html`.
"""

from __future__ import annotations

import base64
import functools
import os
from pathlib import Path
from typing import Any

ASSETS = "evidently"
FONT = "material-ui-icons.woff2"


@functools.cache
def _bundle() -> tuple[str, str, str]:
    """Evidently's (version, JavaScript bundle, base64 icon font), as its templates embed them;
    read once per process (3.6 MB, needed for every report saved or logged)."""
    import evidently
    from evidently.legacy.utils import dashboard

    static = Path(dashboard.STATIC_PATH)
    script = (static / "index.js").read_text(encoding="utf-8")
    font = base64.b64encode((static / FONT).read_bytes()).decode()
    return evidently.__version__, script, font


def _script_name(version: str) -> str:
    return f"evidently-{version}.js"


def save_report_html(snapshot: Any, path: Path) -> Path:
    """Write an Evidently snapshot as HTML at ``path`` with its bundle and font shared in
    ``<path's folder>/evidently/``; return ``path``. Falls back to Evidently's self-contained
    file if its template no longer embeds the bundle the way this expects."""
    version, script, font = _bundle()
    html = snapshot.get_html_str(as_iframe=False)
    embedded_script = f"<script>{script}</script>"
    embedded_font = f"url(data:font/ttf;base64,{font})"
    path.parent.mkdir(parents=True, exist_ok=True)
    if embedded_script not in html or embedded_font not in html:
        _write(path, html.encode())
        return path
    assets = path.parent / ASSETS
    assets.mkdir(exist_ok=True)
    name = _script_name(version)
    if not (assets / name).exists():
        _write(assets / name, script.encode())
    if not (assets / FONT).exists():
        _write(assets / FONT, base64.b64decode(font))
    html = html.replace(embedded_script, f'<script src="{ASSETS}/{name}"></script>', 1)
    html = html.replace(embedded_font, f"url({ASSETS}/{FONT})", 1)
    _write(path, html.encode())
    return path


def self_contained_html(path: Path) -> str | None:
    """The report at ``path`` with its shared bundle and font embedded again (for MLflow's
    viewer), or None if it does not use shared assets."""
    version, script, font = _bundle()
    html = Path(path).read_text(encoding="utf-8")
    linked = f'<script src="{ASSETS}/{_script_name(version)}"></script>'
    if linked not in html:
        return None
    html = html.replace(linked, f"<script>{script}</script>", 1)
    return html.replace(f"url({ASSETS}/{FONT})", f"url(data:font/ttf;base64,{font})", 1)


def _write(path: Path, data: bytes) -> None:
    # Whole or not at all: a reader (the index, a browser, a lab running beside this one)
    # never sees half a file.
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_bytes(data)
    tmp.replace(path)
