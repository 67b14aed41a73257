"""One renderer for the tables a lab prints (aligned text) or leaves for people (Markdown)."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

Formatter = Callable[[Any], str]


def cell(value: Any, digits: int = 3) -> str:
    """Floats rounded to ``digits``, booleans as yes/no, None as a dash, the rest as text."""
    if value is None:
        return "—"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return f"{value:.{digits}f}"
    return str(value)


def _cells(
    rows: Sequence[Mapping[str, Any]],
    columns: Sequence[str] | None,
    formats: Mapping[str, Formatter] | None,
) -> tuple[list[str], list[list[str]]]:
    columns = list(columns or (rows[0] if rows else []))
    formats = formats or {}
    body = [[formats.get(c, cell)(row.get(c)) for c in columns] for row in rows]
    return columns, body


def text_table(
    rows: Sequence[Mapping[str, Any]],
    columns: Sequence[str] | None = None,
    *,
    formats: Mapping[str, Formatter] | None = None,
    indent: int = 2,
    title: str | None = None,
) -> str:
    """An aligned plain-text table for the printout: numbers right-aligned, text left."""
    columns, body = _cells(rows, columns, formats)
    if not columns:
        return ""
    width = _widths(columns, body)
    numeric = [all(_is_number(r[i]) for r in body) and bool(body) for i in range(len(columns))]

    def line(values: Sequence[str]) -> str:
        parts = [
            v.rjust(width[i]) if numeric[i] else v.ljust(width[i]) for i, v in enumerate(values)
        ]
        return " " * indent + "  ".join(parts).rstrip()

    lines = [title] if title else []
    lines += [line(columns), " " * indent + "  ".join("-" * w for w in width)]
    lines += [line(r) for r in body]
    return "\n".join(lines)


def markdown_table(
    rows: Sequence[Mapping[str, Any]],
    columns: Sequence[str] | None = None,
    *,
    formats: Mapping[str, Formatter] | None = None,
) -> str:
    """A padded Markdown table: readable in a terminal, rendered on GitHub and in Prefect."""
    columns, body = _cells(rows, columns, formats)
    if not columns:
        return ""
    width = _widths(columns, body)
    lines = [
        "| " + " | ".join(c.ljust(width[i]) for i, c in enumerate(columns)) + " |",
        "|" + "|".join("-" * (w + 2) for w in width) + "|",
    ]
    lines += ["| " + " | ".join(v.ljust(width[i]) for i, v in enumerate(r)) + " |" for r in body]
    return "\n".join(lines)


def _widths(columns: Sequence[str], body: Sequence[Sequence[str]]) -> list[int]:
    return [
        max(len(c), *(len(r[i]) for r in body)) if body else len(c) for i, c in enumerate(columns)
    ]


def _is_number(text: str) -> bool:
    try:
        float(text.replace(",", "").rstrip("%"))
    except ValueError:
        return text == "—"
    return True
