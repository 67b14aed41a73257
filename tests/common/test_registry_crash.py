"""Promotion survives a kill at any point: the next run's repair restores the invariant."""

from __future__ import annotations

import subprocess
import sys
import textwrap
import uuid
from pathlib import Path

import pytest
from mlflow import MlflowClient

from labs.common.registry import (
    CHAMPION,
    PREVIOUS,
    alias_version,
    promote,
    read_audit_log,
    repair,
)
from labs.common.tracking import configure_tracking

# Runs in a child process: promote v2 over v1, and die (SIGKILL-like, no cleanup) at a point.
KILL_SCRIPT = textwrap.dedent(
    """
    import os, sys
    from pathlib import Path
    from mlflow import MlflowClient
    from labs.common import registry
    from labs.common.tracking import configure_tracking

    name, log, point = sys.argv[1], Path(sys.argv[2]), sys.argv[3]
    configure_tracking()
    client = MlflowClient()
    real_set = client.set_registered_model_alias
    real_audit = registry._audit

    def set_alias(model, alias, version):
        if point == "before_previous" and alias == registry.PREVIOUS:
            os._exit(9)
        real_set(model, alias, version)

    def audit(*args, **kwargs):
        if point == "before_audit":
            os._exit(9)
        return real_audit(*args, **kwargs)

    client.set_registered_model_alias = set_alias
    registry._audit = audit
    registry.promote(client, name, "2", reason="test", audit_log=log, previous=registry.PREVIOUS)
    """
)


@pytest.fixture(scope="module")
def client() -> MlflowClient:
    configure_tracking()
    return MlflowClient()


@pytest.mark.parametrize("point", ["before_previous", "before_audit"])
def test_a_kill_between_alias_moves_is_repaired_by_the_next_run(
    client: MlflowClient, tmp_path: Path, point: str
) -> None:
    name = f"test-crash-{uuid.uuid4().hex[:8]}"
    client.create_registered_model(name)
    for _ in range(2):
        client.create_model_version(name, source="file:///nowhere")
    log = tmp_path / "audit.jsonl"
    promote(client, name, "1", reason="first", audit_log=log, previous=PREVIOUS)

    killed = subprocess.run([sys.executable, "-c", KILL_SCRIPT, name, str(log), point], timeout=120)
    assert killed.returncode == 9
    # The kill left the registry inconsistent: champion moved, previous did not follow.
    assert alias_version(client, name, CHAMPION) == "2"
    assert alias_version(client, name, PREVIOUS) is None

    moves = repair(client, name, audit_log=log)
    assert {m.action for m in moves} == {"repair"}
    assert alias_version(client, name, CHAMPION) == "2"
    assert alias_version(client, name, PREVIOUS) == "1"
    champion_moves = [m for m in read_audit_log(log) if m.alias == CHAMPION]
    assert champion_moves[-1].to_version == "2"
    assert repair(client, name, audit_log=log) == []  # consistent now: nothing more to do


def test_repair_of_a_consistent_registry_changes_nothing(client: MlflowClient, tmp_path: Path):
    name = f"test-crash-{uuid.uuid4().hex[:8]}"
    client.create_registered_model(name)
    for _ in range(2):
        client.create_model_version(name, source="file:///nowhere")
    log = tmp_path / "audit.jsonl"
    promote(client, name, "1", reason="first", audit_log=log, previous=PREVIOUS)
    promote(client, name, "2", reason="second", audit_log=log, previous=PREVIOUS)
    before = log.read_text()
    assert repair(client, name, audit_log=log) == []
    assert log.read_text() == before and alias_version(client, name, PREVIOUS) == "1"
    assert repair(client, "no-such-model", audit_log=log) == []
