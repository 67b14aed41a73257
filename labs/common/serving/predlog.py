"""The prediction log: every request's inputs, outputs, model version and time, in SQLite.

Why SQLite and not a file per request or a CSV: appends from concurrent requests must neither
interleave nor vanish, and the monitoring job must read the log while the server writes it.
SQLite in WAL mode gives exactly that — one writer at a time (a lock here serialises this
process's threads), readers that never block it, and a transaction per request: a request's
rows are all in the log or none are. ``synchronous=NORMAL`` keeps a commit cheap (no fsync per
request) and survives a crash of the server process; only a power cut can lose the last
commits.

The server hands each write to one writer thread (``writer.py``) and waits for it before it
answers, for a bounded time: with a healthy log a client that got a 200 knows its request is
logged ("logged == sent" is exact), and the answer says ``"logged": "written"``. While another
process holds the write lock the answer says ``"pending"`` (the write lands when the lock frees)
or, if the queue is full, ``"dropped"`` (counted in ``/metrics``).

Refused requests (422, 413, 415) are logged too, in the ``rejections`` table of the same file:
when, which endpoint, the status, the reason and the body's size — never the body itself.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Sequence
from contextlib import closing
from pathlib import Path
from typing import Any

import pandas as pd

from labs.common.data import (
    CATEGORICAL_FEATURES,
    CATEGORIES,
    FEATURES,
    LABEL,
    NUMERIC_FEATURES,
    PROBA,
)

_SQL_TYPES = {"monthly_charges": "REAL"}  # the other numeric features are whole numbers
_COLUMNS = ", ".join(
    f"{name} {_SQL_TYPES.get(name, 'INTEGER') if name in NUMERIC_FEATURES else 'TEXT'} NOT NULL"
    for name in FEATURES
)
_SCHEMA = f"""
CREATE TABLE IF NOT EXISTS predictions (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    request_id TEXT NOT NULL,
    row_index INTEGER NOT NULL,
    ts REAL NOT NULL,
    model_version TEXT NOT NULL,
    {_COLUMNS},
    {PROBA} REAL NOT NULL,
    {LABEL} INTEGER NOT NULL,
    UNIQUE (request_id, row_index)
)
"""
_INSERT = (
    f"INSERT INTO predictions (request_id, row_index, ts, model_version, {', '.join(FEATURES)}, "
    f"{PROBA}, {LABEL}) VALUES ({', '.join('?' * (len(FEATURES) + 6))})"
)

_COUNTS = "SELECT COUNT(DISTINCT request_id), COUNT(*) FROM predictions"

_REJECTIONS_SCHEMA = """
CREATE TABLE IF NOT EXISTS rejections (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    ts REAL NOT NULL,
    endpoint TEXT NOT NULL,
    status INTEGER NOT NULL,
    reason TEXT NOT NULL,
    body_bytes INTEGER NOT NULL
)
"""
_INSERT_REJECTION = (
    "INSERT INTO rejections (ts, endpoint, status, reason, body_bytes) VALUES (?, ?, ?, ?, ?)"
)


class DuplicateRequestError(ValueError):
    """A request id that is already in the log (a replayed request is not logged twice)."""


class PredictionLog:
    """Append-only SQLite log of predictions; safe to share between threads."""

    def __init__(self, path: Path, busy_timeout: float = 30.0) -> None:
        """Open (or create) the log; a write waits up to ``busy_timeout`` s for another
        process's write lock before raising ``database is locked``."""
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        # One connection, serialised by a lock: a single writer, whatever the thread.
        self._conn = sqlite3.connect(self.path, check_same_thread=False, timeout=30)
        self._lock = threading.Lock()
        with self._lock, self._conn:
            self._conn.execute("PRAGMA journal_mode=WAL")
            self._conn.execute("PRAGMA synchronous=NORMAL")
            self._conn.execute(_SCHEMA)
            self._conn.execute(_REJECTIONS_SCHEMA)
        # Set after creating the tables: opening may wait; later writes wait only this long.
        self._conn.execute(f"PRAGMA busy_timeout={int(busy_timeout * 1000)}")

    def append(
        self,
        request_id: str,
        ts: float,
        model_version: str,
        rows: Sequence[Sequence[Any]],
        probabilities: Sequence[float],
        labels: Sequence[int],
    ) -> int:
        """Log one request (``rows`` are feature values in ``FEATURES`` order) in one
        transaction; return the number of rows written."""
        if not len(rows) == len(probabilities) == len(labels):
            raise ValueError(
                f"rows, probabilities and labels differ in length: "
                f"{len(rows)}, {len(probabilities)}, {len(labels)}"
            )
        records = [
            (request_id, i, ts, model_version, *row, float(p), int(y))
            for i, (row, p, y) in enumerate(zip(rows, probabilities, labels, strict=True))
        ]
        try:
            with self._lock, self._conn:
                self._conn.executemany(_INSERT, records)
        except sqlite3.IntegrityError as err:
            raise DuplicateRequestError(f"request id {request_id!r} is already logged") from err
        return len(records)

    def append_rejection(
        self, ts: float, endpoint: str, status: int, reason: str, body_bytes: int
    ) -> None:
        """Log one refused request: when, where, the status and why (not the body)."""
        with self._lock, self._conn:
            self._conn.execute(_INSERT_REJECTION, (ts, endpoint, status, reason, body_bytes))

    def counts(self) -> tuple[int, int]:
        """(requests, rows) in the log."""
        with self._lock:
            row = self._conn.execute(_COUNTS).fetchone()
        return int(row[0]), int(row[1])

    def close(self) -> None:
        with self._lock:
            self._conn.close()


def read_predictions(path: Path) -> pd.DataFrame:
    """The whole log as a frame, categories as pandas Categoricals (as in the training data)."""
    with _read_only(path) as conn:
        frame = pd.read_sql_query("SELECT * FROM predictions ORDER BY id", conn)
    for name in CATEGORICAL_FEATURES:
        frame[name] = pd.Categorical(frame[name], categories=list(CATEGORIES[name]))
    return frame


def read_rejections(path: Path) -> pd.DataFrame:
    """Every refused request in the log at ``path`` (ts, endpoint, status, reason,
    body_bytes), oldest first; empty for a log written before rejections were kept."""
    with _read_only(path) as conn:
        exists = conn.execute(
            "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'rejections'"
        ).fetchone()
        if not exists:
            columns = ["id", "ts", "endpoint", "status", "reason", "body_bytes"]
            return pd.DataFrame(columns=columns)
        return pd.read_sql_query("SELECT * FROM rejections ORDER BY id", conn)


def log_counts(path: Path) -> tuple[int, int]:
    """(requests, rows) in the log at ``path``, read without opening it for writing."""
    with _read_only(path) as conn:
        row = conn.execute(_COUNTS).fetchone()
    return int(row[0]), int(row[1])


def _read_only(path: Path) -> closing[sqlite3.Connection]:
    # A separate read connection: WAL readers see every committed request, never block writers.
    if not Path(path).exists():
        raise FileNotFoundError(f"prediction log {path} does not exist")
    return closing(sqlite3.connect(f"file:{Path(path)}?mode=ro", uri=True, timeout=30))


def remove_log(path: Path) -> None:
    """Delete a log and its WAL side files (a fresh log for a new replay)."""
    for suffix in ("", "-wal", "-shm"):
        Path(f"{path}{suffix}").unlink(missing_ok=True)
