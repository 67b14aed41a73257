"""Lab monitoring under its counterfactuals: the claims turn ✗, and the numbers say why.

One run with two counterfactuals at once (one run instead of two: they break different claims):
the model loaded from the registry in every request breaks the latency SLO, and drift taken for
degradation breaks "drift is not degradation" and "quality alert on time".
"""

from __future__ import annotations

from dataclasses import replace

import pytest

from labs.common.results import Summary, read_summary, stamp, write_summary
from labs.monitoring.counterfactuals import QualityAlertOnDrift, load_model_per_request
from labs.monitoring.lab import run
from tests.labs.test_monitoring import REQUESTS, SMALL

pytestmark = pytest.mark.counterfactual  # make test-counterfactuals


@pytest.fixture(scope="module")
def broken_run(tmp_path_factory: pytest.TempPathFactory) -> Summary:
    """The lab with two counterfactuals at once (one run instead of two: they touch different
    claims): the model loaded in every request, and drift taken for degradation."""
    out = tmp_path_factory.mktemp("monitoring-broken")
    result = run(
        replace(SMALL, registered_model="churn-model-monitoring-test-broken"),
        out,
        serving_hook=load_model_per_request,
        monitor_cls=QualityAlertOnDrift,
    )
    stamp(result, params=SMALL)
    return read_summary(write_summary(result, out))


def test_a_model_loaded_per_request_breaks_the_latency_slo(broken_run: Summary) -> None:
    claim = broken_run.claim("latency_p99")
    m = dict(claim.measured)
    assert not claim.passed and m["p99_ms"] > m["slo_ms"] == SMALL.latency_p99_slo_ms
    assert m["requests"] == REQUESTS  # every request still answered: slow, not failing
    assert broken_run.claim("no_request_lost").passed


def test_drift_taken_for_degradation_breaks_drift_is_not_degradation(broken_run: Summary) -> None:
    claim = broken_run.claim("drift_is_not_degradation")
    m = dict(claim.measured)
    assert not claim.passed and m["quality_alerts"] >= 1 and m["drift_alert_days"] == 4
    # the labels show no degradation: each covariate day stays above both calibrated floors
    assert m["min_roc_auc"] > m["roc_auc_floor"] and m["min_accuracy"] > m["accuracy_floor"]
    q = dict(broken_run.claim("quality_alert_on_time").measured)
    assert not broken_run.claim("quality_alert_on_time").passed
    assert q["first_quality_alert_day"] == SMALL.covariate_start_day < q["labels_arrive_day"]
