"""The availability lab's claims, decided by what the clients saw and what Envoy reported."""

from __future__ import annotations

import math
from collections.abc import Sequence

from labs.availability.faults import Loading
from labs.availability.params import AvailabilityParams
from labs.common.results import Claim
from labs.common.steady_load import Hit, failed, worst_gap


def between(hits: Sequence[Hit], start: float, end: float = math.inf) -> list[Hit]:
    """Requests started in [start, end)."""
    return [h for h in hits if start <= h.started < end]


def nines(requests: int, failures: int) -> float:
    """−log10 of the failure rate; with no failure, the most n requests can show: log10(n)."""
    if requests == 0:
        return math.nan
    return -math.log10(max(failures, 1) / requests)


def make_claims(
    params: AvailabilityParams,
    *,
    hits: Sequence[Hit],
    events: dict[str, float],
    address: dict[str, str],
    roles: dict[str, str],
    loading: Loading,
    ready_after_gone: int,
    alive_after_gone: int,
    exit_code: int | None,
    drained_direct: list[tuple[int, float]],
    load_error: str,
    retries: int,
) -> list[Claim]:
    e, hold = events, params.hold_s
    crashed, hung, drained = (address[roles[k]] for k in ("crashed", "hung", "drained"))
    kill_window = between(hits, e["kill"], e["recovered"] + hold)
    hang_window = between(hits, e["hang"], e["hang_recovered"] + hold)
    term_window = between(hits, e["term"], e["term_exited"] + hold)
    after_gone = between(hits, e["store_gone"])
    # A per-host bound on detection: the checks that must fail, each waiting at most its timeout.
    hc_bound = params.unhealthy_threshold * (params.hc_interval_s + params.hc_timeout_s) + 1.0
    # While it loaded: from the restart until its load was let go (events, not a sleep).
    while_loading = between(hits, e["restart"], e["load_released"])
    after_ready = between(hits, e["recovered"], e["hang"])
    slowest_hang = max((h.finished - h.started for h in between(hits, e["hang"], e["resume"])),
                       default=0.0)  # fmt: skip
    hang_out = between(hits, e["hang_ejected"], e["resume"])
    inflight = [h for h in hits if h.host == drained and h.started < e["term"] < h.finished]
    # Sent before SIGTERM, straight to the replica, answered after it: drained, not dropped.
    direct_in_flight = [status for status, done in drained_direct if done > e["term"]]
    # uvicorn re-raises the SIGTERM after its graceful shutdown: −15 is a clean drain, −9 not.
    clean_exit = exit_code in (0, -15)
    total_failed = len(failed(hits))
    return [
        Claim(
            "kill_zero_failed",
            "SIGKILL of one replica under load: 0 failed client requests (Envoy retries on "
            "another replica); ejection and recovery times measured",
            len(failed(kill_window)) == 0
            and e["kill_ejected"] - e["kill"] <= hc_bound
            and len(kill_window) > 0,
            {
                "requests": len(kill_window),
                "failed": len(failed(kill_window)),
                "ejection_s": e["kill_ejected"] - e["kill"],
                "ejection_bound_s": hc_bound,
                "recovery_s": e["recovered"] - e["load_released"],
                "envoy_retries_whole_run": retries,
            },
        ),
        Claim(
            "not_ready_gets_no_traffic",
            "Readiness, not liveness: the restarted replica listens and answers /health while "
            "its model loads, yet Envoy (checking /ready) sends it no request until it is "
            "loaded; then it gets traffic again",
            loading.alive
            and not loading.ready
            and loading.requests > 0
            and loading.received == 0
            and sum(h.host == crashed for h in while_loading) == 0
            and sum(h.host == crashed for h in after_ready) > 0,
            {
                "alive_while_loading": int(loading.alive),
                "ready_while_loading": int(loading.ready),
                "health_checks_while_loading": loading.health_checks,
                "requests_while_loading": loading.requests,
                "received_while_loading": loading.received,
                "answered_503_while_loading": loading.answered_503,
                "loading_s": e["load_released"] - e["restart"],
                "served_by_it_while_loading": sum(h.host == crashed for h in while_loading),
                "served_by_it_after_ready": sum(h.host == crashed for h in after_ready),
            },
        ),
        Claim(
            "hung_replica_ejected",
            "A hung replica (accepts, never answers) is ejected by timeouts with 0 failed "
            "requests; the slowest request is bounded by the per-try timeout (+1 s)",
            len(failed(hang_window)) == 0
            and e["hang_ejected"] - e["hang"] <= hc_bound
            and slowest_hang <= params.per_try_timeout_s + 1.0
            and sum(h.host == hung for h in hang_out) == 0,
            {
                "requests": len(hang_window),
                "failed": len(failed(hang_window)),
                "ejection_s": e["hang_ejected"] - e["hang"],
                "slowest_request_s": slowest_hang,
                "per_try_timeout_s": params.per_try_timeout_s,
                "served_by_it_while_ejected": sum(h.host == hung for h in hang_out),
                "recovery_after_resume_s": e["hang_recovered"] - e["resume"],
            },
        ),
        Claim(
            "graceful_drain",
            "SIGTERM drains: requests in flight on the stopping replica complete, it exits "
            "cleanly (uvicorn re-raises the SIGTERM after draining: -15, never -9), and clients "
            "lose nothing",
            clean_exit
            and len(direct_in_flight) > 0
            and all(status == 200 for status, _ in drained_direct)
            and all(h.ok for h in inflight)
            and len(failed(term_window)) == 0,
            {
                "exit_code": -1 if exit_code is None else exit_code,
                "direct_sent": len(drained_direct),
                "direct_in_flight_at_sigterm": len(direct_in_flight),
                "direct_answered_200": sum(status == 200 for status, _ in drained_direct),
                "proxied_in_flight_at_sigterm": len(inflight),
                "proxied_in_flight_completed": sum(h.ok for h in inflight),
                "failed": len(failed(term_window)),
                "drain_s": e["term_exited"] - e["term"],
            },
        ),
        Claim(
            "store_gone_keeps_serving",
            "With the model store gone, the replicas stay ready (in Envoy's rotation) and keep "
            "serving the model they loaded; only a new load fails",
            len(after_gone) > 0
            and len(failed(after_gone)) == 0
            and bool(load_error)
            and alive_after_gone > 0
            and ready_after_gone == alive_after_gone,
            {
                "replicas_alive": alive_after_gone,
                "replicas_ready_after_store_gone": ready_after_gone,
                "requests_after_store_gone": len(after_gone),
                "failed": len(failed(after_gone)),
                "fresh_load_failed": int(bool(load_error)),
            },
        ),
        Claim(
            "availability_over_run",
            "Over the whole run (crash, hang, drain, store loss) every client request "
            "succeeded; nines and the worst gap between successes measured",
            total_failed == 0 and worst_gap(hits) <= params.per_try_timeout_s + 1.0,
            {
                "requests": len(hits),
                "failed": total_failed,
                "success_rate": 1 - total_failed / len(hits) if hits else math.nan,
                "nines_at_least": nines(len(hits), total_failed),
                "worst_gap_s": worst_gap(hits),
            },
        ),
    ]
