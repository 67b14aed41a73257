"""Faults injected into replicas, and a watcher of what Envoy thinks of each replica.

Each fault is a real signal to a real process: SIGKILL (a crash), SIGSTOP (a hang: the kernel
still accepts connections, nothing answers), SIGTERM (a graceful stop: uvicorn finishes
in-flight requests, then exits 0). The watcher polls Envoy's admin ``/clusters`` so ejection
and recovery are timed from the proxy's own view, not guessed. :func:`observe_loading` watches
a replica that listens before its model is loaded, for as long as events (not a sleep) say.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass

from labs.common.processes import HOST
from labs.common.proxy import Proxy
from labs.common.steady_load import SteadyLoad


@dataclass(frozen=True)
class HealthSample:
    began: float  # wall clock when the admin call was sent …
    at: float  # … and when its answer arrived: the state held at some moment in between
    healthy: frozenset[str]  # addresses Envoy routes to


class HealthWatcher:
    """Poll Envoy's view of ``cluster`` every ``interval`` seconds in a thread."""

    def __init__(self, proxy: Proxy, cluster: str, interval: float = 0.05) -> None:
        self.proxy, self.cluster, self.interval = proxy, cluster, interval
        self.samples: list[HealthSample] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True)

    def __enter__(self) -> HealthWatcher:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(5)

    def _loop(self) -> None:
        while not self._stop.is_set():
            with contextlib.suppress(Exception):  # an admin hiccup is a missing sample
                began = time.time()
                healthy = frozenset(self.proxy.healthy_hosts(self.cluster))
                self.samples.append(HealthSample(began, time.time(), healthy))
            self._stop.wait(self.interval)

    def first(self, after: float, address: str, healthy: bool, timeout: float) -> float:
        """Wait until a sample after ``after`` shows ``address`` (un)healthy; its wall time."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for s in list(self.samples):
                if s.at >= after and (address in s.healthy) == healthy:
                    return s.at
            time.sleep(self.interval)
        state = "healthy" if healthy else "unhealthy"
        raise TimeoutError(f"Envoy did not see {address} {state} within {timeout:.0f} s")


class InFlight:
    """``n`` requests to one replica, each held *in flight*: headers and half the body sent,
    the rest only after :meth:`release` — so a signal sent in between meets requests that
    have certainly started. :meth:`results` gives (status, answered at) for each."""

    def __init__(self, url: str, body: dict, n: int, prefix: str) -> None:
        from concurrent.futures import ThreadPoolExecutor

        self._release = threading.Event()
        self._started = [threading.Event() for _ in range(n)]
        self._pool = ThreadPoolExecutor(n)
        payloads = [json.dumps({**body, "request_id": f"{prefix}-{i}"}).encode() for i in range(n)]
        self._futures = [
            self._pool.submit(self._send, url, p, e)
            for p, e in zip(payloads, self._started, strict=True)
        ]

    def _send(self, url: str, payload: bytes, started: threading.Event) -> tuple[int, float]:
        import httpx

        def chunks() -> Iterator[bytes]:
            yield payload[: len(payload) // 2]
            started.set()
            self._release.wait(30)
            yield payload[len(payload) // 2 :]

        try:
            answer = httpx.post(f"{url}/predict", content=chunks(), timeout=30,
                                headers={"content-type": "application/json"})  # fmt: skip
            return answer.status_code, time.time()
        except httpx.HTTPError:
            return 0, time.time()
        finally:
            started.set()

    def wait_started(self, timeout: float = 30.0) -> None:
        for event in self._started:
            event.wait(timeout)

    def release(self) -> None:
        self._release.set()

    def results(self) -> list[tuple[int, float]]:
        self.release()
        out = [f.result() for f in self._futures]
        self._pool.shutdown()
        return out


def wait_accepted(port: int, timeout: float = 30.0) -> None:
    """Wait until the server listening on ``port`` has accepted every connection made to it:
    the kernel's accept queue of its listening socket (``rx_queue`` of a LISTEN line in
    ``/proc/net/tcp``) is empty."""
    suffix = f":{port:04X}"
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with open("/proc/net/tcp") as table:
            queues = [
                int(f[4].split(":")[1], 16)
                for f in (line.split() for line in list(table)[1:])
                if f[1].endswith(suffix) and f[3] == "0A"  # 0A: LISTEN
            ]
        if queues and not any(queues):
            return
        time.sleep(0.01)
    raise TimeoutError(f"port {port}: connections still waiting to be accepted after {timeout} s")


def wait_refusing(port: int, timeout: float = 30.0) -> None:
    """Wait until ``port`` refuses connections: the server closed its listening socket."""
    import socket

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            socket.create_connection((HOST, port), timeout=0.5).close()
        except ConnectionRefusedError:
            return
        except OSError:
            pass  # a timeout: still there, too busy to accept
        time.sleep(0.01)
    raise TimeoutError(f"port {port} still accepts connections after {timeout} s")


def kill(pid: int) -> float:
    """SIGKILL the replica's process group (a crash: nothing is finished); the wall time."""
    at = time.time()
    os.killpg(pid, signal.SIGKILL)
    return at


def hang(pid: int) -> float:
    """SIGSTOP: the process keeps its socket (connections are accepted) but never answers."""
    at = time.time()
    os.killpg(pid, signal.SIGSTOP)
    return at


def resume(pid: int) -> float:
    at = time.time()
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pid, signal.SIGCONT)
    return at


def terminate(pid: int) -> float:
    """SIGTERM: uvicorn stops accepting, finishes what is in flight, exits 0."""
    at = time.time()
    os.killpg(pid, signal.SIGTERM)
    return at


def health_checks(proxy: Proxy, cluster: str) -> int:
    """Active health checks Envoy has sent to ``cluster``'s replicas so far."""
    return proxy.cluster_stats(cluster).get("health_check.attempt", 0)


@dataclass(frozen=True)
class Loading:
    """A restarted replica while its model loads: what it answered, and what it received."""

    alive: bool  # /health answered 200 at the start and at the end of the window
    ready: bool  # /ready answered 200 at some point of the window (it must not)
    health_checks: int  # Envoy's checks of the cluster during the window
    requests: int  # client requests started during the window
    received: int  # POST /predict the replica itself counted (its /metrics)
    answered_503: int


def observe_loading(
    url: str, proxy: Proxy, cluster: str, load: SteadyLoad, *, checks: int, requests: int,
    timeout: float = 60.0,
) -> Loading:  # fmt: skip
    """Once the replica at ``url`` listens (alive, model not loaded), wait until Envoy has sent
    ``checks`` more health checks and the clients ``requests`` more requests — evidence enough
    that a replica Envoy thought ready would have been sent some — then read the replica's own
    count of the predictions it was asked for."""
    import httpx

    from labs.common.serving.metrics import parse_metrics, series

    def status(path: str) -> int:
        try:
            return httpx.get(f"{url}{path}", timeout=5.0).status_code
        except httpx.HTTPError:
            return 0

    deadline = time.monotonic() + timeout
    while status("/health") != 200:
        if time.monotonic() > deadline:
            raise TimeoutError(f"{url} did not come alive within {timeout:.0f} s")
        time.sleep(0.02)
    began, checks0 = time.time(), health_checks(proxy, cluster)
    ready = status("/ready") == 200
    while (
        health_checks(proxy, cluster) - checks0 < checks
        or sum(h.started >= began for h in load.snapshot()) < requests
    ):
        if time.monotonic() > deadline:
            raise TimeoutError(f"no {checks} health checks and {requests} requests in {timeout} s")
        ready = ready or status("/ready") == 200
        time.sleep(0.05)
    metrics = parse_metrics(httpx.get(f"{url}/metrics", timeout=5.0).text)
    return Loading(
        alive=status("/health") == 200,
        ready=ready or status("/ready") == 200,
        health_checks=health_checks(proxy, cluster) - checks0,
        requests=sum(h.started >= began for h in load.snapshot()),
        received=round(series(metrics, "churn_requests_total", endpoint="/predict")),
        answered_503=round(
            series(metrics, "churn_requests_total", endpoint="/predict", status="503")
        ),
    )


def wait_for_checks(proxy: Proxy, cluster: str, n: int, timeout: float = 60.0) -> None:
    """Wait until Envoy has sent ``n`` more health checks to ``cluster``."""
    target = health_checks(proxy, cluster) + n
    deadline = time.monotonic() + timeout
    while health_checks(proxy, cluster) < target:
        if time.monotonic() > deadline:
            raise TimeoutError(f"Envoy sent fewer than {n} health checks in {timeout:.0f} s")
        time.sleep(0.05)


def model_store_reachable() -> str | None:
    """A *deep* readiness check — the model store answers — run inside a replica (the
    counterfactual ``ready-needs-the-store``); why it is not ready, or None."""
    from pathlib import Path

    from labs.common.tracking import tracking_uri

    uri = tracking_uri()
    if uri.startswith("sqlite:///"):  # a file store: reachable while the file is there
        path = Path(uri.removeprefix("sqlite:///"))
        return None if path.exists() else f"model store unreachable: {path} is gone"
    import mlflow

    try:
        mlflow.MlflowClient().search_registered_models(max_results=1)
    except Exception as err:  # noqa: BLE001 — any failure means "store unreachable"
        return f"model store unreachable: {type(err).__name__}"
    return None
