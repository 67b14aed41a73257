"""Two retraining runs at once (issue #11, item 5): the same challenger, one store — at most one
run reports a promotion, and the aliases, their tags and the audit log agree with it."""

from __future__ import annotations

import threading
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from pathlib import Path
from typing import Any

from mlflow import MlflowClient

from labs.common.registry import CHAMPION, PREVIOUS, alias_version, previous_tag, read_audit_log
from labs.common.tracking import configure_tracking
from labs.retraining import steps as steps_module
from labs.retraining.outcome import Champion, Outcome
from labs.retraining.steps import RetrainConfig, Steps, run_retraining


def test_two_concurrent_promotions_of_one_challenger_report_one_promotion(
    sandbox_root: Path,
) -> None:
    configure_tracking()
    client = MlflowClient()
    name = f"test-concurrent-{uuid.uuid4().hex[:8]}"
    first = run_retraining(RetrainConfig.from_params(month=2, model_name=name))
    assert first.action == "promoted" and alias_version(client, name, CHAMPION) == "1"

    # Both runs load champion v1, train the same challenger and decide to promote it; the
    # barrier holds each at the promotion step until the other is there too, which is the
    # race of two runs started together (without it the runs may happen not to overlap).
    barrier = threading.Barrier(2, timeout=60)

    def promote_together(*args: Any) -> tuple[str, str, str | None]:
        barrier.wait()
        return steps_module.promote_or_keep(*args)

    def one_run(config: RetrainConfig) -> Outcome:
        try:
            return run_retraining(config, Steps(promote_or_keep=promote_together))
        except BaseException:
            barrier.abort()  # the other run must not wait for this one
            raise

    config = RetrainConfig.from_params(month=3, model_name=name)
    with ThreadPoolExecutor(2) as pool:
        runs = [pool.submit(one_run, replace(config)) for _ in range(2)]
        outcomes = [run.result(timeout=180) for run in runs]

    assert {o.challenger_version for o in outcomes} == {"2"}  # one version for one sha
    assert sorted(o.action for o in outcomes) == ["kept", "promoted"], [o.reasons for o in outcomes]
    kept = next(o for o in outcomes if o.action == "kept")
    assert "already champion" in kept.reasons[-1]
    # What both runs report, the registry says: champion v2, previous v1, tagged so.
    assert [o.champion_version for o in outcomes] == ["2", "2"]
    assert alias_version(client, name, CHAMPION) == "2"
    assert alias_version(client, name, PREVIOUS) == "1"
    assert client.get_model_version(name, "2").tags[previous_tag(CHAMPION)] == "1"
    audit = Path(sandbox_root / config.audit_log)
    moves = [
        (m.action, m.from_version, m.to_version)
        for m in read_audit_log(audit)
        if m.model == name and m.alias == CHAMPION
    ]
    assert moves == [("promote", None, "1"), ("promote", "1", "2")]
    # Each run's MLflow record ends with the action it reported.
    tags = [client.get_run(o.mlflow_run_id).data.tags["action"] for o in outcomes]
    assert tags == [o.action for o in outcomes]


def test_a_promotion_decided_against_a_replaced_champion_moves_nothing(sandbox_root: Path) -> None:
    """Two runs with *different* challengers: the later one compared against a champion that
    the other has replaced meanwhile, so its comparison is stale and nothing moves."""
    from labs.common.registry import promote

    configure_tracking()
    client = MlflowClient()
    name = f"test-stale-{uuid.uuid4().hex[:8]}"
    client.create_registered_model(name)
    for _ in range(3):
        client.create_model_version(name, source="file:///nowhere")
    config = RetrainConfig.from_params(model_name=name)
    audit = Path(sandbox_root / config.audit_log)
    promote(client, name, "1", reason="first", audit_log=audit, previous=PREVIOUS)
    # This run loaded champion v1 and scored v2 against it; another run promoted v3 since.
    promote(client, name, "3", reason="the other run", audit_log=audit, previous=PREVIOUS)

    action, why, after = steps_module.promote_or_keep(Champion("1", None), "2", 0.70, 0.90, config)

    assert (action, after) == ("kept", "3") and "stale" in why
    assert alias_version(client, name, CHAMPION) == "3"
    assert alias_version(client, name, PREVIOUS) == "1"
    assert all(m.to_version != "2" for m in read_audit_log(audit))
