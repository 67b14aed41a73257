"""Request bodies of the serving app, read and refused: a size limit enforced while reading,
JSON objects without repeated keys, and 422 answers in FastAPI's ``{"detail": [...]}`` shape
with one readable sentence added.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from fastapi import Request
from fastapi.responses import JSONResponse

MAX_PROBLEMS_SHOWN = 20


class BodyTooLarge(Exception):
    """The body passed the endpoint's size limit (answered 413)."""


class DuplicateKey(ValueError):
    """A JSON object repeats a key (answered 422: which value was meant is unknowable)."""


def no_duplicate_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    """``object_pairs_hook`` for ``json.loads``: a dict, or :class:`DuplicateKey`."""
    seen: dict[str, Any] = {}
    for key, value in pairs:
        if key in seen:
            raise DuplicateKey(f"duplicate key {key!r} in a JSON object")
        seen[key] = value
    return seen


def declared_length(request: Request) -> int:
    declared = request.headers.get("content-length", "")
    return int(declared) if declared.isdigit() else -1


async def read_body(request: Request, limit: int) -> bytes:
    """The body, at most ``limit`` bytes: :class:`BodyTooLarge` on a larger declared length at
    once, or as soon as the stream passes the limit (a client may send no length)."""
    if declared_length(request) > limit:
        raise BodyTooLarge
    chunks, size = [], 0
    async for chunk in request.stream():  # bounded: stops at the limit, even without a length
        size += len(chunk)
        if size > limit:
            raise BodyTooLarge
        chunks.append(chunk)
    return b"".join(chunks)


def unprocessable(errors: Sequence[Any], prefix: tuple[str, ...] = ("body",)) -> JSONResponse:
    """422 with FastAPI's ``{"detail": [...]}`` shape plus one readable sentence."""
    shown = [
        {"loc": [*prefix, *e.get("loc", ())], "msg": e.get("msg", ""), "type": e.get("type", "")}
        for e in errors[:MAX_PROBLEMS_SHOWN]
    ]
    parts = [f"{_where(e.get('loc', ()))}: {e.get('msg', '')}{_got(e)}" for e in errors[:5]]
    more = f" (and {len(errors) - 5} more)" if len(errors) > 5 else ""
    noun = "problem" if len(errors) == 1 else "problems"
    return JSONResponse(
        {
            "detail": shown,
            "message": f"invalid request, {len(errors)} {noun}: " + "; ".join(parts) + more,
        },
        422,
    )


def _where(loc: Sequence[Any]) -> str:
    text = ""
    for part in loc:
        if part == "body":
            continue
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text or "body"


def _got(error: Any) -> str:
    value = error.get("input")
    if isinstance(value, bool | int | float | str) and error.get("type") != "missing":
        shown = repr(value)
        return f" (got {shown[:40]}{'…' if len(shown) > 40 else ''})"
    return ""
