"""Lab availability: every claim asserted from its numbers (what the clients saw, what Envoy
reported), on small parameters, plus the cases that must not hold (a replica gets no traffic
while loading or hung), the counterfactuals that must break them (a health check on liveness,
no retries), and that no proxy or replica outlives the run. Wall-time goals (ejection, the
slowest request) are the benchmark's (benchmarks/bench_availability.py), not asserted here."""

from __future__ import annotations

import json
import math
import os
from dataclasses import replace
from pathlib import Path

import pandas as pd
import pytest

from labs.availability.claims import between, nines
from labs.availability.counterfactuals import NAIVE_PROXY
from labs.availability.lab import run
from labs.availability.params import AvailabilityParams
from labs.common.catalogue import topic
from labs.common.params import params_for
from labs.common.plots import read_drawing
from labs.common.results import LabResult, finish, read_summary
from labs.common.steady_load import Hit, worst_gap

SMALL = replace(params_for(AvailabilityParams, "availability"), train_rows=800, hold_s=1.0)
CLAIMS = [
    "kill_zero_failed",
    "not_ready_gets_no_traffic",
    "hung_replica_ejected",
    "graceful_drain",
    "store_gone_keeps_serving",
    "availability_over_run",
]


@pytest.fixture(scope="module")
def out_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("availability")


@pytest.fixture(scope="module")
def lab(out_dir: Path) -> LabResult:
    return run(SMALL, out_dir)


@pytest.fixture(scope="module")
def broken(tmp_path_factory: pytest.TempPathFactory) -> LabResult:
    """The counterfactual liveness-check-and-no-retries: Envoy checks /health, and has no
    retry policy."""
    return run(replace(SMALL, **NAIVE_PROXY.params), tmp_path_factory.mktemp("availability-cf"))


def measured(result: LabResult, claim: str) -> dict:
    return dict(result.claim(claim).measured)


# --- the claims, from their numbers ------------------------------------------------------


def test_killing_a_replica_under_load_fails_no_request(lab: LabResult) -> None:
    m = measured(lab, "kill_zero_failed")
    assert m["requests"] > 50 and m["failed"] == 0
    assert m["ejection_s"] > 0 and m["recovery_s"] > 0  # ejected after the kill, back later
    assert m["envoy_retries_whole_run"] > 0  # the retries are what hid the crash


def test_a_loading_replica_gets_no_traffic_until_ready(lab: LabResult) -> None:
    m = measured(lab, "not_ready_gets_no_traffic")
    # alive (it listens, /health 200) and not ready (/ready 503) the whole window …
    assert m["alive_while_loading"] == 1 and m["ready_while_loading"] == 0
    # … long enough for Envoy to check every replica and the clients to send many requests …
    assert m["health_checks_while_loading"] >= (SMALL.healthy_threshold + 2) * SMALL.replicas
    assert m["requests_while_loading"] >= 30
    # … and by its own count it received none of them
    assert m["received_while_loading"] == m["answered_503_while_loading"] == 0
    assert m["served_by_it_while_loading"] == 0
    assert m["served_by_it_after_ready"] > 0


def test_a_hung_replica_is_ejected_by_timeouts(lab: LabResult) -> None:
    m = measured(lab, "hung_replica_ejected")
    assert m["failed"] == 0 and m["requests"] > 0
    assert m["ejection_s"] > 0 and m["served_by_it_while_ejected"] == 0


def test_sigterm_drains_in_flight_requests(lab: LabResult) -> None:
    m = measured(lab, "graceful_drain")
    assert m["exit_code"] in (0, -15)  # uvicorn re-raises SIGTERM after draining; never -9
    assert m["direct_in_flight_at_sigterm"] == m["direct_sent"] == SMALL.drain_requests
    assert m["direct_answered_200"] == SMALL.drain_requests
    assert m["proxied_in_flight_completed"] == m["proxied_in_flight_at_sigterm"]
    assert m["failed"] == 0


def test_replicas_keep_serving_without_the_model_store(lab: LabResult) -> None:
    m = measured(lab, "store_gone_keeps_serving")
    assert m["requests_after_store_gone"] > 0 and m["failed"] == 0
    # replica-3 was stopped; the other two are still in Envoy's rotation
    assert m["replicas_ready_after_store_gone"] == m["replicas_alive"] == SMALL.replicas - 1
    assert m["fresh_load_failed"] == 1  # the negative side: a new replica could not start


def test_availability_over_the_whole_run(lab: LabResult, out_dir: Path) -> None:
    m = measured(lab, "availability_over_run")
    requests = pd.read_csv(out_dir / "requests.csv")
    assert len(requests) == m["requests"]
    assert int((requests["status"] != 200).sum()) == m["failed"] == 0
    assert m["success_rate"] == 1.0
    assert m["nines_at_least"] == pytest.approx(math.log10(m["requests"]))
    table = pd.read_csv(out_dir / "availability.csv").set_index("phase")
    assert table.loc["whole run", "requests"] == m["requests"]
    assert table["failed"].sum() == 2 * m["failed"]  # the phases, then the whole run
    # every replica served requests (by Envoy's x-served-by header)
    assert requests["host"].nunique() == SMALL.replicas


# --- counterfactuals: the same lab with a broken part -------------------------------------


@pytest.mark.counterfactual
def test_a_liveness_health_check_sends_requests_to_a_loading_replica(broken: LabResult) -> None:
    m = measured(broken, "not_ready_gets_no_traffic")
    assert not broken.claim("not_ready_gets_no_traffic").passed
    assert m["alive_while_loading"] == 1 and m["ready_while_loading"] == 0  # the same replica …
    assert m["received_while_loading"] > 0  # … but Envoy, checking /health, sent it requests
    assert m["answered_503_while_loading"] == m["received_while_loading"]  # it could not serve


@pytest.mark.counterfactual
def test_without_retries_a_crash_and_a_hang_fail_requests(broken: LabResult) -> None:
    for claim in ("kill_zero_failed", "hung_replica_ejected", "availability_over_run"):
        assert not broken.claim(claim).passed, claim
    assert measured(broken, "kill_zero_failed")["failed"] > 0
    hung = measured(broken, "hung_replica_ejected")
    # No per-try timeout: a request that met the hung replica waited past the per-try bound —
    # until the route's timeout failed it, or (when the replica was resumed first, as on a
    # slow machine where its ejection took most of that timeout) until it answered late.
    assert hung["slowest_request_s"] > hung["per_try_timeout_s"] + 1
    assert measured(broken, "kill_zero_failed")["envoy_retries_whole_run"] == 0


# --- units -------------------------------------------------------------------------------


def test_nines_and_gaps() -> None:
    assert nines(1000, 1) == pytest.approx(3.0)
    assert nines(1000, 0) == pytest.approx(3.0)  # a lower bound: 1000 requests show ≥ 3 nines
    assert math.isnan(nines(0, 0))
    hits = [Hit(0, t, t + 0.01, 200, "model", "h", "1") for t in (0.0, 0.1, 1.5)]
    hits.append(Hit(1, 0.5, 0.6, 0, None, None, None, "ConnectError"))
    assert worst_gap(hits) == pytest.approx(1.4)
    assert len(between(hits, 0.05, 1.0)) == 2


# --- contract, plot, processes -----------------------------------------------------------


def test_summary_follows_the_contract(lab: LabResult, tmp_path: Path, capsys) -> None:
    assert lab.passed, [c.id for c in lab.claims if not c.passed]
    assert finish(lab, tmp_path) == 0
    summary = read_summary(tmp_path / "summary.json")
    assert summary.lab == "availability" and summary.passed
    assert summary.question == topic("availability").question
    assert [c.id for c in summary.claims] == CLAIMS
    assert summary.mlflow["experiment"] == "lab-availability" and summary.mlflow["run_id"]
    assert "✓ kill_zero_failed" in capsys.readouterr().out


def test_the_timeline_shows_each_replica_and_the_faults(lab: LabResult) -> None:
    png = next(Path(a) for a in lab.artifacts if a.endswith(".png"))
    top, bottom = read_drawing(png)["axes"]
    labels = [line["label"] for line in top["lines"]]
    assert {f"replica-{i + 1}" for i in range(SMALL.replicas)} <= set(labels)
    failed = next(line for line in top["lines"] if line["label"] == "failed requests")
    assert max(failed["y"]) == 0
    assert "0 failed" in top["title"]
    healthy = next(line for line in bottom["lines"] if line["label"].startswith("healthy"))
    assert min(healthy["y"]) < SMALL.replicas == max(healthy["y"])  # one taken out, and back


def test_no_proxy_or_replica_outlives_the_lab(lab: LabResult, out_dir: Path) -> None:
    pids = json.loads((out_dir / "processes.json").read_text())
    assert {"envoy", "replica-1", "replica-1-standby", "replica-2", "replica-3"} <= set(pids)
    for pid in pids.values():
        with pytest.raises(ProcessLookupError):
            os.killpg(pid, 0)  # each led its own group: the whole group is gone
    survivors = []
    for proc in Path("/proc").iterdir():
        if proc.name.isdigit():
            try:
                cmdline = (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode()
            except OSError:
                continue
            if str(out_dir) in cmdline:
                survivors.append(cmdline)
    assert survivors == []
