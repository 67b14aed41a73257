"""Lab deployment: every claim asserted from its numbers (Envoy's counters, the replicas'
metrics and logs), on small parameters, plus the cases that must fail (the bad canary, the
bad shadow, zero traffic, missing metrics), the broken parts of the counterfactuals, and that no
proxy or replica outlives the run. The rollback's wall-time goal is the benchmark's
(benchmarks/bench_deployment.py), not asserted here."""

from __future__ import annotations

import json
import os
from dataclasses import replace
from pathlib import Path

import pytest
from scipy.stats import binom

from labs.common.catalogue import topic
from labs.common.params import params_for
from labs.common.plots import read_drawing
from labs.common.proxy import ProxySpec, envoy_config
from labs.common.results import LabResult, finish, read_summary
from labs.deployment.analysis import (
    AnalysisRules,
    Window,
    analyse,
    naive_schedule,
    split_interval,
    weight_schedule,
)
from labs.deployment.counterfactuals import analyse_without_guards, shadow_as_split
from labs.deployment.lab import run
from labs.deployment.params import DeploymentParams

SMALL = replace(
    params_for(DeploymentParams, "deployment"),
    train_rows=1000,
    # 5 % of 300 requests: ~15 canary requests (fewer than min_canary_requests = 5 has odds
    # ~1e-3) and ~150 rows to compare churn shares on.
    requests_per_step=300,
    shadow_requests=60,
    switch_hold_s=1.0,
)
CLAIMS = [
    "canary_good_promoted",
    "canary_bad_rolled_back",
    "split_within_ci",
    "blue_green_zero_failed",
    "shadow_never_answers",
    "pitfalls_guarded",
]


@pytest.fixture(scope="module")
def out_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("deployment")


@pytest.fixture(scope="module")
def lab(out_dir: Path) -> LabResult:
    return run(SMALL, out_dir)


def measured(result: LabResult, claim: str) -> dict:
    return dict(result.claim(claim).measured)


# --- the claims, from their numbers ------------------------------------------------------


def test_good_canary_reaches_100_and_is_promoted(lab: LabResult) -> None:
    m = measured(lab, "canary_good_promoted")
    assert m["steps_passed"] == m["steps"] == len(SMALL.canary_steps)
    assert m["final_weight"] == 100
    assert m["champion_version"] == m["good_version"]  # the registry moved, audited
    assert m["failed_requests"] == 0
    assert m["max_churn_share_diff"] <= SMALL.max_churn_share_diff


def test_bad_canary_is_rolled_back_with_bounded_exposure(lab: LabResult) -> None:
    m = measured(lab, "canary_bad_rolled_back")
    first = SMALL.canary_steps[0]
    assert m["rolled_back_at_weight"] == first
    assert m["bad_requests"] > 0  # it did get traffic: the rollback was decided on data
    assert m["exposure"] == pytest.approx(m["bad_requests"] / m["total_requests"])
    n = SMALL.requests_per_step
    allowed = binom.ppf(1 - SMALL.split_alpha / 2, n, first / 100)
    assert m["bad_requests_allowed"] == allowed and m["exposure_bound"] == allowed / n
    assert m["bad_requests"] <= allowed  # over the whole run, after the rollback included
    assert m["exposure_in_step"] <= allowed / n < first / 100 + 0.1  # a few percent, not more
    assert m["after_rollback"] == 0
    assert abs(m["churn_share_bad"] - m["churn_share_champion"]) > SMALL.max_churn_share_diff


def test_observed_split_lies_in_a_binomial_interval_of_each_weight(lab: LabResult) -> None:
    m = measured(lab, "split_within_ci")
    assert m["steps_in_ci"] == m["steps_checked"] == len(SMALL.canary_steps) + 1
    for weight in SMALL.canary_steps:
        n, share = m[f"good_{weight}pct_n"], m[f"good_{weight}pct_observed"]
        assert n == SMALL.requests_per_step
        low, high = binom.interval(1 - SMALL.split_alpha, n, weight / 100)
        assert low <= round(share * n) <= high
    assert m["good_100pct_observed"] == 1.0


def test_blue_green_switches_and_rolls_back_with_zero_failed_requests(lab: LabResult) -> None:
    m = measured(lab, "blue_green_zero_failed")
    assert m["requests"] > 50 and m["failed"] == 0
    assert m["green_served"] > 0
    assert m["blue_after_switch"] == 0 and m["green_after_rollback"] == 0


def test_shadow_traffic_is_never_answered_and_compared_offline(lab: LabResult) -> None:
    m = measured(lab, "shadow_never_answers")
    assert m["client_requests"] == m["from_champion"] == SMALL.shadow_requests
    assert m["mirrored_good"] == m["mirrored_bad"] == SMALL.shadow_requests
    assert m["rows_compared"] == SMALL.shadow_requests * SMALL.rows_per_request
    assert m["agreement_good"] >= SMALL.min_shadow_agreement
    assert m["agreement_bad"] < 0.5  # the negative case: learned churn backwards


def test_pitfalls_are_guarded(lab: LabResult) -> None:
    m = measured(lab, "pitfalls_guarded")
    assert m["naive_last_weight"] == 40 and m["guarded_last_weight"] == 50
    assert m["zero_step_canary_requests"] == 0 and m["zero_step_passed"] == 0
    assert m["missing_metrics_passed"] == 0


# --- units: the analysis and the config --------------------------------------------------


def test_weight_schedule_always_ends_at_the_max() -> None:
    assert weight_schedule(20, 50) == [20, 40, 50]
    assert naive_schedule(20, 50) == [20, 40]
    assert weight_schedule(25, 100) == naive_schedule(25, 100) == [25, 50, 75, 100]
    with pytest.raises(ValueError):
        weight_schedule(0, 50)


def test_analysis_fails_without_data_and_passes_a_healthy_canary() -> None:
    rules = AnalysisRules(min_requests=5)
    champion = Window(requests=100, errors_5xx=0, rows=1000, churn_rows=200, p99_ms=5.0)
    healthy = Window(requests=10, errors_5xx=0, rows=100, churn_rows=22, p99_ms=5.0)
    assert analyse(healthy, champion, rules).passed
    assert not analyse(None, champion, rules).passed  # missing is not 0
    assert not analyse(replace(healthy, requests=0, rows=0, churn_rows=0), champion, rules).passed
    assert not analyse(replace(healthy, errors_5xx=1), champion, rules).passed
    assert not analyse(replace(healthy, churn_rows=80), champion, rules).passed
    low, high = split_interval(5, 100, 0.001)
    assert low < 0.05 < high
    assert split_interval(300, 300, 0.001)[1] == 1.0  # all served: the interval reaches 1
    assert split_interval(0, 300, 0.001)[0] == 0.0


def test_envoy_config_routes_by_runtime_fraction_and_mirrors() -> None:
    spec = ProxySpec({"a": [1001], "b": [1002], "m": [1003]}, primary="a", canary="b",
                     canary_percent=5, mirrors=("m",))  # fmt: skip
    config = envoy_config(spec, 2000, 2001)
    manager = config["static_resources"]["listeners"][0]["filter_chains"][0]["filters"][0]
    routes = manager["typed_config"]["route_config"]["virtual_hosts"][0]["routes"]
    canary, default = routes
    assert canary["match"]["runtime_fraction"]["runtime_key"] == "routing.canary"
    assert canary["match"]["runtime_fraction"]["default_value"]["numerator"] == 5
    assert canary["route"]["cluster"] == "b" and default["route"]["cluster"] == "a"
    assert default["route"]["request_mirror_policies"][0]["cluster"] == "m"
    assert any("admin_layer" in layer for layer in config["layered_runtime"]["layers"])
    with pytest.raises(ValueError):
        ProxySpec({"a": [1]}, primary="a", canary="missing")
    with pytest.raises(ValueError):
        ProxySpec({"a": [1], "b": [2]}, primary="a", canary="b", canary_percent=2.5)


def test_the_analysis_without_guards_passes_what_the_lab_rolls_back() -> None:
    rules = AnalysisRules(min_requests=5)
    champion = Window(requests=100, errors_5xx=0, rows=1000, churn_rows=200, p99_ms=5.0)
    backwards = Window(requests=10, errors_5xx=0, rows=100, churn_rows=80, p99_ms=5.0)
    nothing = Window(requests=0, errors_5xx=0, rows=0, churn_rows=0, p99_ms=float("nan"))
    for canary in (backwards, None, nothing):  # wrong answers, unreadable metrics, no traffic
        assert not analyse(canary, champion, rules).passed
        assert analyse_without_guards(canary, champion, rules).passed


def test_the_shadow_as_a_weighted_route_answers_clients_from_a_challenger() -> None:
    ports = {"v1": 1001, "good": 1002, "bad": 1003}
    config = envoy_config(shadow_as_split(ports, "v1", ("good", "bad")), 2000, 2001)
    manager = config["static_resources"]["listeners"][0]["filter_chains"][0]["filters"][0]
    routes = manager["typed_config"]["route_config"]["virtual_hosts"][0]["routes"]
    assert [r["route"]["cluster"] for r in routes] == ["bad", "v1"]  # clients get bad's answers
    assert routes[0]["match"]["runtime_fraction"]["default_value"]["numerator"] == 10


# --- contract, plot, processes -----------------------------------------------------------


def test_summary_follows_the_contract(lab: LabResult, tmp_path: Path, capsys) -> None:
    assert lab.passed, [c.id for c in lab.claims if not c.passed]
    assert finish(lab, tmp_path) == 0
    summary = read_summary(tmp_path / "summary.json")
    assert summary.lab == "deployment" and summary.passed
    assert summary.question == topic("deployment").question
    assert [c.id for c in summary.claims] == CLAIMS
    assert summary.mlflow["experiment"] == "lab-deployment" and summary.mlflow["run_id"]
    assert "✓ canary_bad_rolled_back" in capsys.readouterr().out


def test_the_plot_shows_the_measured_split(lab: LabResult) -> None:
    png = next(Path(a) for a in lab.artifacts if a.endswith(".png"))
    split_axis, bg_axis = read_drawing(png)["axes"]
    m = measured(lab, "split_within_ci")
    good = next(line for line in split_axis["lines"] if line["label"] == "good challenger")
    assert good["y"] == pytest.approx([m[f"good_{w}pct_observed"] for w in SMALL.canary_steps])
    assert split_axis["ylim"] == [0.0, 1.0] and bg_axis["ylim"] == [0.0, 1.0]
    assert "0 failed" in bg_axis["title"]


def test_no_proxy_or_replica_outlives_the_lab(lab: LabResult, out_dir: Path) -> None:
    pids = json.loads((out_dir / "processes.json").read_text())
    assert {"replica-v1", "replica-good", "replica-bad", "envoy-shadow"} <= set(pids)
    for name, pid in pids.items():
        with pytest.raises(ProcessLookupError):
            os.killpg(pid, 0)  # each led its own group: the whole group is gone
        assert name  # (named for the failure message)
    # Nothing anywhere still runs with this run's files on its command line.
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
