"""Continuous load for as long as something happens: N clients loop over request bodies until
told to stop, recording what each response was and who (behind a proxy) answered it.

:mod:`labs.common.replay` sends a fixed list; a blue-green switch, a replica killed or a
graceful shutdown needs traffic *during* the event, however long it takes:

    with SteadyLoad(proxy.url, bodies, clients=3) as load:
        time.sleep(1.0); event = time.time(); kill(replica); time.sleep(3.0)
    failed = [h for h in load.hits if not h.ok]

Each :class:`Hit` keeps the proxy's ``x-upstream-cluster`` / ``x-served-by`` headers (see
:mod:`labs.common.proxy`) and the model version from the body, so a lab can tell which
environment or replica served every request. A transport error is recorded, never raised.
"""

from __future__ import annotations

import itertools
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from labs.common.proxy import CLUSTER_HEADER, HOST_HEADER


@dataclass(frozen=True)
class Hit:
    """One request as a client saw it."""

    client: int
    started: float  # wall clock, epoch seconds
    finished: float
    status: int  # 0 when the connection failed
    cluster: str | None
    host: str | None
    model_version: str | None
    error: str | None = None

    @property
    def ok(self) -> bool:
        return self.status == 200


class SteadyLoad:
    """``clients`` threads each POST bodies (cycled) to ``url + path`` until :meth:`stop`.

    ``pause_s`` between a client's requests keeps the rate modest on a shared machine; request
    ids are made unique per hit (``<prefix>-<client>-<n>``) so a replica's prediction log never
    refuses a repeat.
    """

    def __init__(
        self,
        url: str,
        bodies: Sequence[Mapping[str, Any]],
        *,
        clients: int = 2,
        path: str = "/predict",
        timeout: float = 10.0,
        pause_s: float = 0.0,
        id_prefix: str = "load",
    ) -> None:
        if not bodies:
            raise ValueError("SteadyLoad needs at least one request body")
        self.url, self.path, self.timeout, self.pause_s = url, path, timeout, pause_s
        self.bodies, self.clients, self.id_prefix = list(bodies), clients, id_prefix
        self.hits: list[Hit] = []
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []

    def __enter__(self) -> SteadyLoad:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def start(self) -> None:
        for c in range(self.clients):
            thread = threading.Thread(target=self._loop, args=(c,), daemon=True)
            thread.start()
            self._threads.append(thread)

    def stop(self) -> list[Hit]:
        """Stop every client after its current request; the hits, ordered by start time."""
        self._stop.set()
        for thread in self._threads:
            thread.join(self.timeout + 5)
        self._threads = []
        with self._lock:
            self.hits.sort(key=lambda h: h.started)
            return list(self.hits)

    def snapshot(self) -> list[Hit]:
        with self._lock:
            return list(self.hits)

    def _loop(self, client: int) -> None:
        import httpx

        with httpx.Client(base_url=self.url, timeout=self.timeout) as http:
            for n in itertools.count():
                if self._stop.is_set():
                    return
                body = dict(self.bodies[(n * self.clients + client) % len(self.bodies)])
                body["request_id"] = f"{self.id_prefix}-{client}-{n}"
                hit = _post(http, self.path, body, client)
                with self._lock:
                    self.hits.append(hit)
                if self.pause_s:
                    self._stop.wait(self.pause_s)


def _post(http: Any, path: str, body: Mapping[str, Any], client: int) -> Hit:
    import httpx

    started = time.time()
    try:
        answer = http.post(path, json=body)
    except httpx.TransportError as err:
        return Hit(client, started, time.time(), 0, None, None, None, f"{type(err).__name__}")
    version = None
    if answer.status_code == 200:
        try:
            version = str(answer.json().get("model_version"))
        except ValueError:
            version = None
    return Hit(
        client,
        started,
        time.time(),
        answer.status_code,
        answer.headers.get(CLUSTER_HEADER),
        answer.headers.get(HOST_HEADER),
        version,
    )


def failed(hits: Sequence[Hit]) -> list[Hit]:
    """Requests the client did not get a 200 for (transport errors included)."""
    return [h for h in hits if not h.ok]


def worst_gap(hits: Sequence[Hit]) -> float:
    """The longest time (s) between two consecutive successful responses."""
    done = sorted(h.finished for h in hits if h.ok)
    return max((b - a for a, b in itertools.pairwise(done)), default=0.0)
