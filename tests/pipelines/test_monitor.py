"""The ``monitor`` flow composes the monitoring lab's steps as tasks, validates its parameters,
and is served beside ``retrain`` (both as ``<flow>/<flow>``)."""

from __future__ import annotations

import pytest

from labs.monitoring import steps as job
from pipelines.monitor import monitor, task_steps


def test_the_flow_wraps_the_same_steps_with_retries_only_for_io() -> None:
    wrapped = task_steps()
    assert monitor.name == "monitor"
    assert wrapped.check_day.fn is job.check_day and wrapped.publish.fn is job.publish
    assert wrapped.load_inputs.fn is job.load_inputs
    assert wrapped.request_retraining.fn is job.request_retraining
    assert wrapped.load_inputs.retries == 3 and wrapped.publish.retries == 3
    assert wrapped.check_day.retries == 0  # a retry of a check would repeat its verdict


def test_the_flow_validates_its_parameters() -> None:
    from prefect.exceptions import ParameterTypeError

    assert monitor.validate_parameters({"days": [12], "alpha": 0.01})["days"] == [12]
    with pytest.raises(ParameterTypeError, match="alpha"):
        monitor.validate_parameters({"alpha": 2.0})
    with pytest.raises(ParameterTypeError, match="days"):
        monitor.validate_parameters({"days": [-1]})


def test_monitor_is_served_next_to_retrain() -> None:
    from pipelines.serve import deployments

    served = {(d.flow_name, d.name) for d in deployments()}
    assert served == {("retrain", "retrain"), ("monitor", "monitor")}
