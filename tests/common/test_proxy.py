"""labs.common.proxy and labs.common.steady_load against a real Envoy and two tiny upstreams
(the standard library's HTTP server, each answering with its own port): the runtime split
moves live, mirrors get a copy and never answer, a dead replica is retried around, and
nothing outlives the ``with`` block."""

from __future__ import annotations

import os
import sys
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path

import httpx
import pytest

from labs.common.processes import free_port, serve_process
from labs.common.proxy import CLUSTER_HEADER, HealthCheck, ProxySpec, Retries, start_proxy
from labs.common.steady_load import SteadyLoad, failed

UPSTREAM = """
import json, sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
port = int(sys.argv[1])
class Handler(BaseHTTPRequestHandler):
    def _answer(self):
        n = int(self.headers.get("content-length") or 0)
        self.rfile.read(n)
        body = json.dumps({"model_version": str(port)}).encode()
        self.send_response(200)
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
    do_GET = do_POST = _answer
    def log_message(self, *args):
        pass
class Server(ThreadingHTTPServer):
    request_queue_size = 256  # the default backlog of 5 refused mirrored requests in bursts
    daemon_threads = True
Server(("127.0.0.1", port), Handler).serve_forever()
"""


@pytest.fixture
def upstreams(tmp_path: Path) -> Iterator[list]:
    with ExitStack() as stack:
        yield [
            stack.enter_context(
                serve_process(
                    lambda port: [sys.executable, "-c", UPSTREAM, str(port)],
                    log=tmp_path / f"upstream-{i}.log",
                    health_path="/ready",
                )
            )
            for i in range(3)
        ]


def _clusters(url: str, n: int) -> Counter:
    with httpx.Client(base_url=url, timeout=10) as http:
        return Counter(http.post("/predict", json={}).headers[CLUSTER_HEADER] for _ in range(n))


def test_runtime_split_moves_live_and_mirrors_never_answer(upstreams, tmp_path: Path) -> None:
    a, b, m = (u.port for u in upstreams)
    spec = ProxySpec({"a": [a], "b": [b], "m": [m]}, primary="a", canary="b", canary_percent=0,
                     mirrors=("m",), health_check=HealthCheck(interval_s=0.2))  # fmt: skip
    with start_proxy(spec, workdir=tmp_path / "envoy") as proxy:
        assert _clusters(proxy.url, 100) == {"a": 100}
        proxy.set_canary_percent(100)
        assert proxy.canary_percent() == 100
        assert _clusters(proxy.url, 100) == {"b": 100}  # no restart, no reload
        proxy.set_canary_percent(50)
        shares = _clusters(proxy.url, 400)
        assert 140 <= shares["b"] <= 260 and set(shares) == {"a", "b"}
        # every request was mirrored to m, whose answers never reached the client
        # (a mirrored request is fire-and-forget: the last few may still be in flight)
        deadline = time.monotonic() + 5
        while proxy.cluster_stats("m")["upstream_rq_total"] < 590 and time.monotonic() < deadline:
            time.sleep(0.1)
        assert proxy.cluster_stats("m")["upstream_rq_total"] >= 590
        assert {h.cluster for h in proxy.hosts()} == {"a", "b", "m"}
        pid = proxy.pid
    with pytest.raises(ProcessLookupError):
        os.killpg(pid, 0)


def test_retries_hide_a_dead_replica(upstreams, tmp_path: Path) -> None:
    dead = free_port()  # nothing listens there: connect failures
    ports = [upstreams[0].port, upstreams[1].port, dead]
    spec = ProxySpec({"model": ports}, primary="model", retries=Retries(num_retries=3),
                     health_check=HealthCheck(interval_s=0.2))  # fmt: skip
    with start_proxy(spec, workdir=tmp_path / "envoy") as proxy:
        with SteadyLoad(proxy.url, [{"rows": []}], clients=2) as load:
            proxy.wait_for_hosts("model", lambda healthy: len(healthy) == 2, timeout=10)
            while len(load.snapshot()) < 100:
                time.sleep(0.05)
        hits = load.stop()
        assert failed(hits) == []
        assert {h.host for h in hits} <= {f"127.0.0.1:{p}" for p in ports[:2]}


def test_a_spec_must_name_defined_clusters_and_whole_percents() -> None:
    with pytest.raises(ValueError, match="not defined"):
        ProxySpec({"a": [1]}, primary="b")
    with pytest.raises(ValueError, match="whole percent"):
        ProxySpec({"a": [1], "b": [2]}, primary="a", canary="b", canary_percent=101)
    with pytest.raises(ValueError, match="at least one"):
        ProxySpec({"a": []}, primary="a")
