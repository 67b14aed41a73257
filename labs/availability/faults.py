"""Faults injected into replicas, and a watcher of what Envoy thinks of each replica.

Each fault is a real signal to a real process: SIGKILL (a crash), SIGSTOP (a hang: the kernel
still accepts connections, nothing answers), SIGTERM (a graceful stop: uvicorn finishes
in-flight requests, then exits 0). The watcher polls Envoy's admin ``/clusters`` so ejection
and recovery are timed from the proxy's own view, not guessed.
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

from labs.common.proxy import Proxy


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

    def last_unhealthy_began(self, after: float, before: float, address: str) -> float:
        """When the last sample in (after, before) that still showed ``address`` out of rotation
        was requested: up to then it provably got no new traffic."""
        return max(
            (s.began for s in self.samples
             if after <= s.began and s.at <= before and address not in s.healthy),
            default=after,
        )  # fmt: skip


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
