"""The production traffic of the lab: a month of customers as ``POST /predict`` requests, a
few malformed ones on one day, and the label feed that arrives later.

Request ``k`` of day ``d`` is ``d{ddd}-{kkkk}`` and carries rows ``k*n … k*n+n-1`` of that
day's batch; the label feed names each row by (request id, row index), as a production label
join would by prediction id.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import pandas as pd

from labs.common.data import DAY, FEATURES, TARGET
from labs.common.replay import (
    VALID,
    Corruption,
    ReplayResult,
    Request,
    frame_requests,
    inject_malformed,
    request_ids,
)


def _one_row(change: Callable[[dict[str, Any]], dict[str, Any]]) -> Callable[[Any], Any]:
    """A corruption: the body's first row, changed by ``change``, sent alone."""
    return lambda body: {"rows": [change(dict(body["rows"][0]))]}


# Malformed requests an upstream bug might send on one quiet day: each must be a 422.
BAD_REQUESTS: tuple[Corruption, ...] = (
    ("age in months, not years", _one_row(lambda r: {**r, "age": r["age"] * 12})),
    ("price sent as a string", _one_row(lambda r: {**r, "monthly_charges": "70.5"})),
    ("a column dropped", _one_row(lambda r: {k: v for k, v in r.items() if k != "contract"})),
    ("an unknown category", _one_row(lambda r: {**r, "contract": "monthly"})),
    ("an extra personal field", _one_row(lambda r: {**r, "email": "a@b.example"})),
    ("an empty batch", lambda body: {"rows": []}),
)


def day_prefix(day: int) -> str:
    return f"d{day:03d}"


def stream_requests(
    stream: pd.DataFrame, rows_per_request: int, bad_input_day: int | None = None
) -> list[Request]:
    """Every day's customers in requests of ``rows_per_request`` rows, in day order; after the
    last request of ``bad_input_day``, the :data:`BAD_REQUESTS`."""
    requests: list[Request] = []
    bad_after = None
    for day, batch in stream.groupby(DAY, sort=True):
        requests += frame_requests(
            batch,
            rows_per_request,
            columns=FEATURES,
            id_prefix=day_prefix(int(day)),
            group=int(day),
        )
        if day == bad_input_day:
            bad_after = len(requests) - 1
    if bad_after is None:
        return requests
    return inject_malformed(requests, BAD_REQUESTS, after=bad_after)


def label_feed(stream: pd.DataFrame, rows_per_request: int) -> pd.DataFrame:
    """Each row's request id and position, its day, and its true label (the outcomes)."""
    parts = []
    for day, batch in stream.groupby(DAY, sort=True):
        index = np.arange(len(batch))
        parts.append(
            pd.DataFrame(
                {
                    "request_id": request_ids(len(batch), rows_per_request, day_prefix(int(day))),
                    "row_index": index % rows_per_request,
                    DAY: int(day),
                    TARGET: batch[TARGET].to_numpy(),
                }
            )
        )
    return pd.concat(parts, ignore_index=True)


def latency_by_day(traffic: ReplayResult) -> pd.DataFrame:
    """Per day: the well-formed requests and their p99 latency as the clients saw it (ms)."""
    rows: list[dict[str, Any]] = []
    for day in sorted({r.group for r in traffic.records}):
        s = traffic.summary(tag=VALID, group=day)
        rows.append({DAY: day, "requests": s.requests, "latency_p99_ms": s.p99_ms})
    return pd.DataFrame(rows)
