"""A load replayer: send a sequence of requests to a server from N concurrent clients and
record what each one got back.

Labs drive traffic with it (monitoring replays a month of customers; deployment, availability,
testing and scaling labs replay load through a proxy or at a server under test):

    requests = frame_requests(stream, rows_per_request=20, id_prefix="d", groups=stream["day"])
    requests = inject_malformed(requests, CORRUPTIONS, every=50)
    result = replay(server.url, requests, clients=4)
    result.summary().by_status            # {"200": 450, "422": 9}
    result.summary(tag="valid").p99_ms    # latency of the well-formed requests only

Every request becomes one :class:`Record`: its position, tag and group, the HTTP status (0 if
the connection failed), the latency, the wall-clock start and end, and the parsed response.
Requests are taken in order by the clients (a shared queue), so with one client the server
sees exactly the given order; with N it sees at most N in flight. A transport failure is
recorded, never raised: a replay measures what the clients saw.
"""

from __future__ import annotations

import json
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from typing import Any

VALID = "valid"  # the tag of a request as given; malformed ones carry their corruption's name

Corruption = tuple[str, Callable[[Any], Any]]  # (name, well-formed body → malformed body)


@dataclass(frozen=True)
class Request:
    """One request to send: a JSON ``body`` (or raw ``content`` bytes), where, and labels."""

    body: Any = None
    content: bytes | None = None  # sent as-is instead of ``body`` (e.g. broken JSON)
    path: str = "/predict"
    method: str = "POST"
    tag: str = VALID  # what kind of request this is (``valid`` or a corruption name)
    group: Any = None  # the caller's grouping, e.g. the simulated day
    request_id: str | None = None
    rows: int = 1  # how many rows (customers) the request carries


@dataclass(frozen=True)
class Record:
    """What one client saw for one request."""

    index: int  # position in the replayed sequence
    tag: str
    group: Any
    request_id: str | None
    rows: int
    status: int  # HTTP status; 0 when the connection failed
    latency_s: float
    started_at: float  # wall clock (epoch seconds)
    finished_at: float
    response: Any = None  # parsed JSON, else the text; None if not kept
    error: str | None = None  # the transport error, if any
    client: int = 0


@dataclass(frozen=True)
class ReplaySummary:
    """Counts by status and tag, latency percentiles (ms), throughput (requests/s)."""

    requests: int
    by_status: dict[str, int]
    by_tag: dict[str, int]
    transport_errors: int
    p50_ms: float
    p95_ms: float
    p99_ms: float
    max_ms: float
    throughput_rps: float
    wall_s: float

    def count(self, status: int) -> int:
        return self.by_status.get(str(status), 0)


@dataclass
class ReplayResult:
    """Every record, in the order the requests were given, and the replay's wall time."""

    records: list[Record]
    wall_s: float
    clients: int
    base_url: str

    def select(self, *, tag: str | None = None, group: Any = None) -> list[Record]:
        return [
            r
            for r in self.records
            if (tag is None or r.tag == tag) and (group is None or r.group == group)
        ]

    def summary(self, *, tag: str | None = None, group: Any = None) -> ReplaySummary:
        """:func:`summarize` of all records, or of one tag or group."""
        return summarize(self.select(tag=tag, group=group))


def summarize(records: Sequence[Record]) -> ReplaySummary:
    """Status and tag counts, latency percentiles of the answered requests (status > 0), and
    throughput over the span from the first start to the last finish."""
    import numpy as np

    answered = [r.latency_s * 1000 for r in records if r.status > 0]
    p50, p95, p99, top = (
        (float(np.percentile(answered, q)) for q in (50, 95, 99, 100))
        if answered
        else (float("nan"),) * 4
    )
    wall = (
        max(r.finished_at for r in records) - min(r.started_at for r in records) if records else 0
    )
    return ReplaySummary(
        requests=len(records),
        by_status=dict(sorted(Counter(str(r.status) for r in records).items())),
        by_tag=dict(sorted(Counter(r.tag for r in records).items())),
        transport_errors=sum(r.status == 0 for r in records),
        p50_ms=p50,
        p95_ms=p95,
        p99_ms=p99,
        max_ms=top,
        throughput_rps=len(records) / wall if wall > 0 else float("nan"),
        wall_s=wall,
    )


def replay(
    base_url: str,
    requests: Iterable[Request | Mapping[str, Any]],
    *,
    clients: int = 4,
    timeout: float = 30.0,
    keep_responses: bool = True,
    headers: Mapping[str, str] | None = None,
) -> ReplayResult:
    """Send ``requests`` (:class:`Request` objects, or plain JSON bodies for ``POST
    /predict``) to ``base_url`` from ``clients`` concurrent clients; record each one."""
    import httpx

    if clients < 1:
        raise ValueError(f"clients must be >= 1, got {clients}")
    queue = [r if isinstance(r, Request) else Request(body=r) for r in requests]
    records: list[Record | None] = [None] * len(queue)
    next_index = iter(range(len(queue)))
    take = threading.Lock()
    limits = httpx.Limits(max_connections=clients, max_keepalive_connections=clients)

    def client_loop(client_id: int, http: httpx.Client) -> None:
        while True:
            with take:
                index = next(next_index, None)
            if index is None:
                return
            records[index] = _send(http, index, queue[index], client_id, keep_responses)

    start = time.perf_counter()
    with (
        httpx.Client(
            base_url=base_url, timeout=timeout, limits=limits, headers=dict(headers or {})
        ) as http,
        ThreadPoolExecutor(clients, thread_name_prefix="replay-client") as pool,
    ):
        for future in [pool.submit(client_loop, c, http) for c in range(clients)]:
            future.result()  # a bug in a client loop surfaces here, not silently
    wall = time.perf_counter() - start
    return ReplayResult([r for r in records if r is not None], wall, clients, base_url)


def _send(http: Any, index: int, request: Request, client: int, keep: bool) -> Record:
    import httpx

    kwargs: dict[str, Any] = {}
    if request.content is not None:
        kwargs = {"content": request.content, "headers": {"content-type": "application/json"}}
    elif request.body is not None:
        kwargs = {"json": request.body}
    started_at, start = time.time(), time.perf_counter()
    status, response, error = 0, None, None
    try:
        answer = http.request(request.method, request.path, **kwargs)
        status = answer.status_code
        if keep:
            try:
                response = answer.json()
            except json.JSONDecodeError:
                response = answer.text
    except httpx.TransportError as err:  # refused, reset, timed out: not served
        error = f"{type(err).__name__}: {err}"
    latency = time.perf_counter() - start
    return Record(
        index=index,
        tag=request.tag,
        group=request.group,
        request_id=request.request_id,
        rows=request.rows,
        status=status,
        latency_s=latency,
        started_at=started_at,
        finished_at=started_at + latency,
        response=response,
        error=error,
        client=client,
    )


def frame_requests(
    frame: Any,
    rows_per_request: int,
    *,
    columns: Sequence[str] | None = None,
    id_prefix: str | None = "r",
    group: Any = None,
    path: str = "/predict",
    key: str = "rows",
) -> list[Request]:
    """Cut ``frame`` (a DataFrame) into requests of ``rows_per_request`` rows: bodies
    ``{"rows": [...], "request_id": "<prefix>-0000"}``, categories as strings, numpy scalars
    as plain numbers. Request ``k`` holds rows ``k*n … k*n+n-1`` (see :func:`request_ids`)."""
    if rows_per_request < 1:
        raise ValueError(f"rows_per_request must be >= 1, got {rows_per_request}")
    selected = frame[list(columns)] if columns is not None else frame
    records = [{k: _plain(v) for k, v in row.items()} for row in selected.to_dict("records")]
    out = []
    for k, begin in enumerate(range(0, len(records), rows_per_request)):
        rows = records[begin : begin + rows_per_request]
        body: dict[str, Any] = {key: rows}
        request_id = None if id_prefix is None else f"{id_prefix}-{k:04d}"
        if request_id is not None:
            body["request_id"] = request_id
        out.append(
            Request(body=body, path=path, group=group, request_id=request_id, rows=len(rows))
        )
    return out


def request_ids(n_rows: int, rows_per_request: int, id_prefix: str = "r") -> list[str]:
    """The request id :func:`frame_requests` gives each of ``n_rows`` rows, in order."""
    return [f"{id_prefix}-{i // rows_per_request:04d}" for i in range(n_rows)]


def inject_malformed(
    requests: Sequence[Request],
    corruptions: Sequence[Corruption],
    *,
    after: int | None = None,
    every: int | None = None,
    group: Any = None,
) -> list[Request]:
    """``requests`` with malformed ones added: each corruption applied to a copy of a
    well-formed body (its ``request_id`` removed, so it cannot collide), tagged with the
    corruption's name, never counted as rows.

    Where: after request index ``after`` (all corruptions together), or one every ``every``
    requests (cycling through the corruptions), or — with neither — at the end.
    """
    if not requests or not corruptions:
        return list(requests)
    if every is not None and every < 1:
        raise ValueError(f"every must be >= 1, got {every}")

    def malformed(template: Request, name: str, corrupt: Callable[[Any], Any]) -> Request:
        body = template.body
        if isinstance(body, Mapping):
            body = {k: v for k, v in body.items() if k != "request_id"}
        bad = corrupt(json.loads(json.dumps(body)))  # a deep copy: the original stays intact
        content = bad if isinstance(bad, bytes) else None
        return replace(
            template,
            body=None if content is not None else bad,
            content=content,
            tag=name,
            group=template.group if group is None else group,
            request_id=None,
            rows=0,
        )

    out: list[Request] = []
    if every is not None:
        for i, request in enumerate(requests):
            out.append(request)
            if (i + 1) % every == 0:
                name, corrupt = corruptions[(i // every) % len(corruptions)]
                out.append(malformed(request, name, corrupt))
        return out
    position = len(requests) - 1 if after is None else min(after, len(requests) - 1)
    out = list(requests[: position + 1])
    out += [malformed(requests[position], n, c) for n, c in corruptions]
    return out + list(requests[position + 1 :])


def _plain(value: Any) -> Any:
    """A numpy scalar as the Python number it holds; anything else unchanged."""
    return value.item() if hasattr(value, "item") else value
