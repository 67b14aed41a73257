"""Data versions: each batch written with its md5 to a store anyone on the team can read, and a
teammate's separate process that checks a version out and recomputes its metric.

The store is what DVC does for a tracked file, in miniature: the bytes under a name, a manifest
(``versions.json``) with the md5 of each. Going back means reading the manifest *from the
store*, refusing bytes that no longer match their md5 and scoring them again — in another
process, because a version only the writing process can read is not a version.
"""

from __future__ import annotations

import hashlib
import io
import json
from pathlib import Path
from typing import Any

import pandas as pd

from labs.common.data import TARGET

MANIFEST = "versions.json"


def md5_bytes(data: bytes) -> str:
    """The md5 of some bytes: what DVC records for a tracked file."""
    return hashlib.md5(data).hexdigest()


class VersionStore:
    """Data versions as CSV files plus a manifest with their md5, in a shared directory."""

    def __init__(self, directory: Path) -> None:
        self.directory = Path(directory)

    def write(self, frame: pd.DataFrame, name: str) -> dict[str, Any]:
        """Write one version; return its manifest entry (name, path, md5, rows)."""
        data = frame.to_csv(index=False).encode()
        self.directory.mkdir(parents=True, exist_ok=True)
        path = f"{name}.csv"
        (self.directory / path).write_bytes(data)
        return {"name": name, "path": path, "md5": md5_bytes(data), "rows": len(frame)}

    def publish(self, entries: list[dict[str, Any]]) -> Path | None:
        """Record the versions (the manifest); return the file a reader opens, if any."""
        path = self.directory / MANIFEST
        path.write_text(json.dumps({"versions": entries}, indent=2) + "\n")
        return path

    def manifest(self) -> list[dict[str, Any]]:
        """The published versions ([] if nothing was published here)."""
        path = self.directory / MANIFEST
        return json.loads(path.read_text())["versions"] if path.exists() else []

    def read(self, path: str) -> bytes | None:
        """A version's bytes as stored now (None if they are not there)."""
        file = self.directory / path
        return file.read_bytes() if file.exists() else None


def teammate_checks_out(
    store_cls: type, directory: Path, name: str, model_file: Path
) -> dict[str, Any]:
    """A teammate's process: open the store, check ``name`` out (md5 verified) and score it with
    the model file; also report the md5 of every version's bytes as found in the store."""
    from labs.common.model import quality_metrics
    from labs.common.tracking import load_model_file
    from labs.data_quality.steps import probabilities

    store = store_cls(directory)
    entries = {e["name"]: e for e in store.manifest()}
    stored = {n: store.read(e["path"]) for n, e in entries.items()}
    found = {
        "versions_found": len(entries),
        "md5_found": {n: md5_bytes(b) for n, b in stored.items() if b is not None},
    }
    entry, data = entries.get(name), stored.get(name)
    if entry is None or data is None:
        return {**found, "found": False, "md5_verified": False}
    if md5_bytes(data) != entry["md5"]:  # changed since it was recorded: refused, not scored
        return {**found, "found": True, "md5_verified": False}
    frame = pd.read_csv(io.BytesIO(data))
    p = probabilities(load_model_file(model_file), frame)
    return {
        **found,
        "found": True,
        "md5_verified": True,
        "roc_auc_recorded": entry.get("roc_auc"),
        "roc_auc_checked_out": quality_metrics(frame[TARGET], p)["roc_auc"],
    }
