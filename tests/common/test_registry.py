"""Registry aliases: promote, roll back (a stack of promotions), refuse without history; audited."""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest
from mlflow import MlflowClient

from labs.common.registry import (
    CHALLENGER,
    CHAMPION,
    NoPreviousVersionError,
    RegistryError,
    alias_version,
    missing_lineage,
    previous_tag,
    promote,
    read_audit_log,
    retry_on_locked,
    rollback,
    set_alias,
)
from labs.common.tracking import configure_tracking


@pytest.fixture(scope="module")
def client() -> MlflowClient:
    configure_tracking()  # the session's throw-away store (tests/conftest.py)
    return MlflowClient()


def new_model(client: MlflowClient, versions: int) -> str:
    """A registered model with ``versions`` versions (no artifacts: aliases need none)."""
    name = f"test-registry-{uuid.uuid4().hex[:8]}"
    client.create_registered_model(name)
    for _ in range(versions):
        client.create_model_version(name, source="file:///nowhere")
    return name


def test_promote_remembers_the_replaced_version_and_rollback_restores_it(client, tmp_path):
    name, log = new_model(client, 2), tmp_path / "audit.jsonl"
    first = promote(client, name, 1, reason="first model", audit_log=log)
    assert (first.from_version, first.to_version) == (None, "1")
    assert previous_tag(CHAMPION) not in client.get_model_version(name, "1").tags

    promote(client, name, 2, reason="better on new data", audit_log=log)
    assert alias_version(client, name, CHAMPION) == "2"
    assert client.get_model_version(name, "2").tags[previous_tag(CHAMPION)] == "1"

    back = rollback(client, name, reason="v2 misbehaves", audit_log=log)
    assert (back.from_version, back.to_version) == ("2", "1")
    assert alias_version(client, name, CHAMPION) == "1"

    moves = read_audit_log(log)
    assert [(m.action, m.from_version, m.to_version) for m in moves] == [
        ("promote", None, "1"),
        ("promote", "1", "2"),
        ("rollback", "2", "1"),
    ]
    assert moves[-1].reason == "v2 misbehaves" and moves[-1].user


def test_rollback_without_a_previous_version_is_refused_and_changes_nothing(client, tmp_path):
    name, log = new_model(client, 1), tmp_path / "audit.jsonl"
    with pytest.raises(NoPreviousVersionError, match="alias is not set"):
        rollback(client, name, reason="nothing promoted yet", audit_log=log)
    promote(client, name, 1, reason="only model", audit_log=log)
    lines_before = log.read_text()
    with pytest.raises(NoPreviousVersionError, match=r"v1 has no previous champion.*stays on v1"):
        rollback(client, name, reason="try anyway", audit_log=log)
    assert alias_version(client, name, CHAMPION) == "1"
    assert log.read_text() == lines_before  # a refused rollback is not a move


def test_rollbacks_unwind_promotions_like_a_stack(client, tmp_path):
    name, log = new_model(client, 3), tmp_path / "audit.jsonl"
    for version in (1, 2, 3):
        promote(client, name, version, reason=f"v{version}", audit_log=log)
    assert rollback(client, name, reason="r1", audit_log=log).to_version == "2"
    # Rolling back must not rewrite v2's history, or the next rollback would cycle to v3.
    assert rollback(client, name, reason="r2", audit_log=log).to_version == "1"
    with pytest.raises(NoPreviousVersionError):
        rollback(client, name, reason="r3", audit_log=log)
    assert alias_version(client, name, CHAMPION) == "1"


def test_promoting_the_challenger_retires_that_alias(client, tmp_path):
    name, log = new_model(client, 2), tmp_path / "audit.jsonl"
    promote(client, name, 1, reason="first", audit_log=log)
    set_alias(client, name, CHALLENGER, 2, reason="trained on new data", audit_log=log)
    assert alias_version(client, name, CHALLENGER) == "2"
    promote(client, name, 2, reason="challenger wins", audit_log=log)
    assert alias_version(client, name, CHALLENGER) is None
    assert [(m.alias, m.action) for m in read_audit_log(log)] == [
        (CHAMPION, "promote"),
        (CHALLENGER, "set"),
        (CHAMPION, "promote"),
        (CHALLENGER, "retire"),
    ]


def test_a_missing_or_deleted_version_leaves_the_alias(client, tmp_path):
    name, log = new_model(client, 2), tmp_path / "audit.jsonl"
    promote(client, name, 1, reason="first", audit_log=log)
    with pytest.raises(RegistryError, match="has no version 7"):
        promote(client, name, 7, reason="typo", audit_log=log)
    promote(client, name, 2, reason="second", audit_log=log)
    client.delete_model_version(name, "1")
    with pytest.raises(RegistryError, match="v1: that version no longer exists"):
        rollback(client, name, reason="v1 is gone", audit_log=log)
    assert alias_version(client, name, CHAMPION) == "2"


def test_a_stale_previous_tag_is_dropped_when_there_is_no_champion(client, tmp_path):
    name, log = new_model(client, 2), tmp_path / "audit.jsonl"
    promote(client, name, 1, reason="first", audit_log=log)
    promote(client, name, 2, reason="second", audit_log=log)
    client.delete_registered_model_alias(name, CHAMPION)  # someone removed it by hand
    promote(client, name, 2, reason="re-promoted", audit_log=log)
    with pytest.raises(NoPreviousVersionError):
        rollback(client, name, reason="to what?", audit_log=log)


def test_missing_lineage_names_the_absent_tags(client):
    name = new_model(client, 1)
    client.set_model_version_tag(name, "1", "git_commit", "abc123")
    client.set_model_version_tag(name, "1", "data_md5", "")
    assert missing_lineage(client.get_model_version(name, "1")) == ["data_md5", "model_sha256"]


def test_retry_on_locked_is_bounded_and_only_for_locks() -> None:
    calls: list[int] = []

    def flaky() -> str:
        calls.append(1)
        if len(calls) < 3:
            raise RuntimeError("(sqlite3.OperationalError) database is locked")
        return "ok"

    assert retry_on_locked(flaky, delay_s=0.001) == ("ok", 2)

    def always_locked() -> None:
        raise RuntimeError("database is locked")

    with pytest.raises(RuntimeError, match="locked"):
        retry_on_locked(always_locked, attempts=3, delay_s=0.001)

    other: list[int] = []

    def broken() -> None:
        other.append(1)
        raise ValueError("not a lock")

    with pytest.raises(ValueError):
        retry_on_locked(broken, delay_s=0.001)
    assert len(other) == 1


def test_an_empty_log_reads_as_no_moves(tmp_path: Path) -> None:
    assert read_audit_log(tmp_path / "none.jsonl") == []
