"""A hash-chained audit log: each JSON line carries the sha256 of the line before it, so
editing, inserting or deleting a past line breaks every hash after it — and verification says
where. Cutting lines off the end leaves a valid shorter chain: that is caught by comparing the
head hash with one kept elsewhere (here: logged to MLflow when the run ends).
"""

from __future__ import annotations

import fcntl
import hashlib
import json
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

GENESIS = "0" * 64


def _digest(entry: dict[str, Any]) -> str:
    body = {k: v for k, v in entry.items() if k != "hash"}
    return hashlib.sha256(
        json.dumps(body, sort_keys=True, separators=(",", ":")).encode()
    ).hexdigest()


def append(path: Path, actor: str, action: str, **detail: Any) -> dict[str, Any]:
    """Append one entry, chained to the last; safe between processes (an exclusive file lock
    around read-last-hash and write)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a+", encoding="utf-8") as log:
        fcntl.flock(log, fcntl.LOCK_EX)
        try:
            log.seek(0)
            lines = [line for line in log.read().splitlines() if line]
            prev = json.loads(lines[-1])["hash"] if lines else GENESIS
            entry: dict[str, Any] = {
                "seq": len(lines),
                "at": datetime.now(UTC).isoformat(timespec="milliseconds"),
                "actor": actor,
                "action": action,
                "detail": detail,
                "prev": prev,
            }
            entry["hash"] = _digest(entry)
            log.write(json.dumps(entry, sort_keys=True) + "\n")
            log.flush()
        finally:
            fcntl.flock(log, fcntl.LOCK_UN)
    return entry


@dataclass(frozen=True)
class Verification:
    entries: int
    ok: bool
    first_bad_line: int | None  # 0-based line where the chain breaks
    reason: str
    head: str


def verify(path: Path, expected_head: str | None = None) -> Verification:
    """Recompute every hash and link; with ``expected_head``, also check nothing was cut off."""
    lines = [line for line in path.read_text(encoding="utf-8").splitlines() if line]
    prev = GENESIS
    for number, line in enumerate(lines):
        try:
            entry = json.loads(line)
        except json.JSONDecodeError:
            return Verification(len(lines), False, number, "not JSON", prev)
        if entry.get("prev") != prev:
            return Verification(len(lines), False, number, "link to the previous line broken", prev)
        if entry.get("seq") != number:
            return Verification(len(lines), False, number, "sequence number out of order", prev)
        if _digest(entry) != entry.get("hash"):
            return Verification(
                len(lines), False, number, "line changed after it was written", prev
            )
        prev = entry["hash"]
    if expected_head is not None and prev != expected_head:
        return Verification(len(lines), False, len(lines), "head differs: lines cut off", prev)
    return Verification(len(lines), True, None, "intact", prev)


def tampered_copies(path: Path, out_dir: Path, line: int) -> dict[str, Path]:
    """Copies of the log with one attack each: edit a past line (as is, and with its own hash
    recomputed, as a careful attacker would), delete a past line, cut the last line off."""
    lines = path.read_text(encoding="utf-8").splitlines(keepends=True)
    naive = json.loads(lines[line])
    naive["actor"] = "someone-else"
    careful = dict(naive, hash=_digest(naive))
    variants = {
        "edited": lines[:line] + [json.dumps(naive, sort_keys=True) + "\n"] + lines[line + 1 :],
        "edited_rehashed": lines[:line]
        + [json.dumps(careful, sort_keys=True) + "\n"]
        + lines[line + 1 :],
        "deleted": lines[:line] + lines[line + 1 :],
        "truncated": lines[:-1],
    }
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = {}
    for name, content in variants.items():
        paths[name] = out_dir / f"audit-{name}.jsonl"
        paths[name].write_text("".join(content), encoding="utf-8")
    return paths
