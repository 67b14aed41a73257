"""Lab scaling with its broken parts (``labs/scaling/counterfactuals.py``): each claim the
counterfactuals target turns ✗, and its numbers say why."""

from __future__ import annotations

import math
from dataclasses import replace

import pytest

from labs.common.results import LabResult
from labs.scaling.counterfactuals import (
    EDGE_PHONES_HOME,
    NAIVE_COSTS,
    SERIALISED_WORKERS,
    TRAINING_AUC,
    UNDAMPED_HPA,
)
from labs.scaling.lab import run
from tests.labs.test_scaling import SMALL

pytestmark = pytest.mark.counterfactual  # make test-counterfactuals

# The broken parts of the claims this lab fixed are independent (workers, edge device, model
# choice, autoscaler settings, cost model): one run with all of them, on smaller batches.
BROKEN = (SERIALISED_WORKERS, EDGE_PHONES_HOME, TRAINING_AUC, UNDAMPED_HPA, NAIVE_COSTS)


@pytest.fixture(scope="module")
def broken(tmp_path_factory: pytest.TempPathFactory) -> LabResult:
    params = replace(SMALL, inprocess_batch_sizes=(1, 64), http_batch_sizes=(1, 100),
                     microbatch_loads=(1, 8), workers_seconds=2.0)  # fmt: skip
    for cf in BROKEN:
        params = replace(params, **cf.params)
    components = {k: v for cf in BROKEN for k, v in cf.components.items()}
    return run(params, tmp_path_factory.mktemp("scaling-broken"), **components)


def test_serialised_workers_gain_nothing_and_fail_the_claim(broken: LabResult) -> None:
    claim = broken.claim("workers_bounded_by_cores")
    m = dict(claim.measured)
    assert not claim.passed
    # Why: two workers taking turns are no faster than one by more than the bound allows.
    assert m["speedup"] <= m["required_speedup"]


def test_an_edge_device_that_phones_home_loses_its_edge(broken: LabResult) -> None:
    claim = broken.claim("edge_beats_cloud_latency")
    m = dict(claim.measured)
    assert not claim.passed
    # Why: each device prediction paid the round trip it was meant to avoid.
    assert m["edge_ms"] >= SMALL.cloud_rtt_ms
    assert m["cloud_ms"] - m["edge_ms"] < SMALL.cloud_rtt_ms


def test_cost_model_without_the_request_fee_fails_the_break_even(broken: LabResult) -> None:
    claim = broken.claim("cost_break_even")
    m = dict(claim.measured)
    assert not claim.passed
    # Why: billed by compute alone, serverless stays cheaper than two pods even at twice the
    # traffic where the price list says they cost the same.
    assert m["serverless_usd_at_twice_break_even"] < m["always_on_min_replicas_usd_per_month"]
    assert m["serverless_usd_per_million"] < SMALL.serverless_per_million_requests


def test_spot_without_rework_fails_the_spot_claim(broken: LabResult) -> None:
    claim = broken.claim("spot_rework_priced")
    m = dict(claim.measured)
    assert not claim.passed and claim.kind == "model"
    # Why: no interruption costs anything, so checkpoints save nothing and spot never loses.
    assert m["spot_no_checkpoint_rework_h"] == m["spot_checkpoint_rework_h"] == 0
    assert m["spot_break_even_job_hours"] == math.inf


def test_model_chosen_on_training_rows_is_the_big_forest(broken: LabResult) -> None:
    claim = broken.claim("smaller_model_within_budget")
    m = dict(claim.measured)
    assert not claim.passed
    assert m["chosen_model"] == m["largest_model"] == SMALL.model_sizes[-1]
    assert m["best_roc_auc"] - m["chosen_roc_auc"] > SMALL.auc_budget


def test_hpa_without_damping_fails_the_autoscaling_claim(broken: LabResult) -> None:
    claim = broken.claim("hpa_follows_daily_curve")
    m = dict(claim.measured)
    assert not claim.passed
    assert m["scaling_events"] == m["scaling_events_without_damping"]
