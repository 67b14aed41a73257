"""Model versions in the MLflow registry: promote, roll back, and an audit log of every move.

MLflow aliases (``champion``, ``challenger``) replace the deprecated stages, but MLflow keeps
no history of them: once ``champion`` moves, nothing in the registry says where it was. So
every move made here is

1. recorded on the promoted version as a tag naming the version it replaced
   (``previous_champion``), which makes a rollback a registry-only operation that any
   teammate can do from any machine, and
2. appended to a JSONL audit log: when, who, why, from which version to which.

A rollback moves the alias back along those tags (a stack: roll back twice, go back two
promotions); it never rewrites them. With nothing to go back to it raises
:class:`NoPreviousVersionError` and leaves the alias where it was.

Lineage: a version is traceable when it carries :data:`LINEAGE_TAGS` — the git commit that
pins the code and the DVC lock file, the md5 of the training data (DVC's own content address)
and the sha256 of the model file.

Concurrency: every read-decide-write of the registry (find-or-register a version, read the
champion → compare → move aliases) happens under :func:`registry_lock`, so two runs at once
act one after the other, and the second sees what the first did.
"""

from __future__ import annotations

import contextlib
import getpass
import json
import os
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, TypeVar

from labs.common.errors import Refusal

if TYPE_CHECKING:  # mlflow is heavy; callers pass a client they already have
    from mlflow import MlflowClient
    from mlflow.entities.model_registry import ModelVersion

T = TypeVar("T")

MODEL_NAME = "churn-model"  # the user's registered model, built by the DVC pipeline
CHAMPION = "champion"
CHALLENGER = "challenger"
PREVIOUS = "previous"  # alias on the version the champion replaced: a one-step rollback target
SHA_TAG = "model_sha256"
LINEAGE_TAGS: tuple[str, ...] = ("git_commit", "data_md5", SHA_TAG)


class RegistryError(Refusal, RuntimeError):
    """An alias move that cannot be done; the registry is left as it was."""


class NoPreviousVersionError(RegistryError):
    """A rollback with no earlier version recorded for the alias."""


@dataclass(frozen=True)
class AliasMove:
    """One line of the audit log: ``alias`` of ``model`` moved ``from_version`` → ``to_version``."""

    model: str
    alias: str
    action: str  # promote | rollback | set | retire | repair
    from_version: str | None
    to_version: str | None
    reason: str
    at: str
    user: str


def previous_tag(alias: str) -> str:
    """The version tag that names the version ``alias`` pointed to before this one."""
    return f"previous_{alias}"


def alias_version(client: MlflowClient, name: str, alias: str) -> str | None:
    """The version ``alias`` points to, or None if it is not set."""
    version = client.get_registered_model(name).aliases.get(alias)
    return None if version is None else str(version)


def set_alias(
    client: MlflowClient, name: str, alias: str, version: str | int, *, reason: str, audit_log: Path
) -> AliasMove:
    """Point ``alias`` (e.g. ``challenger``) at ``version``, without rollback history; audited."""
    version = _existing(client, name, version)
    before = alias_version(client, name, alias)
    client.set_registered_model_alias(name, alias, version)
    return _audit(audit_log, name, alias, "set", before, version, reason)


def promote(
    client: MlflowClient,
    name: str,
    version: str | int,
    *,
    reason: str,
    audit_log: Path,
    alias: str = CHAMPION,
    retire: str | None = CHALLENGER,
    previous: str | None = None,
) -> AliasMove:
    """Move ``alias`` to ``version``, remembering the version it replaces; audited.

    A promoted challenger is no longer a challenger: ``retire`` (if it points at ``version``)
    is removed, and that is audited too. With ``previous`` (e.g. :data:`PREVIOUS`), that alias
    follows to the replaced version.

    Crash safety — the invariant :func:`repair` restores: the tag ``previous_<alias>`` on the
    version ``alias`` points to names the version it replaced, and the ``previous`` alias
    points to exactly that version. The tag is written *before* the one alias move that
    matters, so a process killed at any point leaves either the old champion (nothing
    happened) or the new one with its tag; a stale ``previous`` alias or a missing audit line
    is then derived from the tag by :func:`repair`, which every promoting run calls first.
    """
    version = _existing(client, name, version)
    current = alias_version(client, name, alias)
    if current != version:
        tag = previous_tag(alias)
        if current is None:
            # A stale tag from an earlier life of this version would make rollback jump there.
            if tag in client.get_model_version(name, version).tags:
                client.delete_model_version_tag(name, version, tag)
        else:
            client.set_model_version_tag(name, version, tag, current)
        client.set_registered_model_alias(name, alias, version)
    move = _audit(audit_log, name, alias, "promote", current, version, reason)
    if retire and retire != alias and alias_version(client, name, retire) == version:
        client.delete_registered_model_alias(name, retire)
        _audit(audit_log, name, retire, "retire", version, None, f"promoted to {alias}")
    if previous and current is not None and current != version:
        client.set_registered_model_alias(name, previous, current)
        _audit(audit_log, name, previous, "set", None, current, f"replaced by v{version}")
    return move


def repair(
    client: MlflowClient,
    name: str,
    *,
    audit_log: Path,
    alias: str = CHAMPION,
    previous: str = PREVIOUS,
) -> list[AliasMove]:
    """Restore the invariant of :func:`promote` after a crash; returns the moves it made
    (none when the registry is consistent). Idempotent and cheap: call it before promoting.

    - ``previous`` points to the version named by the champion's ``previous_<alias>`` tag
      (and is unset when there is none);
    - the audit log's last ``alias`` move ends at the current champion (a move whose audit
      line was lost to a kill is recorded, marked as a repair).
    """
    from mlflow.exceptions import MlflowException

    try:
        current = alias_version(client, name, alias)
    except MlflowException:  # no such model yet: nothing to repair
        return []
    moves: list[AliasMove] = []
    wanted = None
    if current is not None:
        wanted = client.get_model_version(name, current).tags.get(previous_tag(alias)) or None
    have = alias_version(client, name, previous)
    if have != wanted:
        if wanted is None:
            client.delete_registered_model_alias(name, previous)
        else:
            client.set_registered_model_alias(name, previous, wanted)
        moves.append(_audit(audit_log, name, previous, "repair", have, wanted, "crash repair"))
    audited = [m for m in read_audit_log(audit_log) if m.model == name and m.alias == alias]
    last = audited[-1].to_version if audited else None
    if current is not None and last != current:
        moves.append(_audit(audit_log, name, alias, "repair", last, current, "unaudited move"))
    return moves


def rollback(
    client: MlflowClient, name: str, *, reason: str, audit_log: Path, alias: str = CHAMPION
) -> AliasMove:
    """Move ``alias`` back to the version it pointed to before the current one; audited.

    Raises :class:`NoPreviousVersionError` (alias unchanged) if there is none.
    """
    current = alias_version(client, name, alias)
    if current is None:
        raise NoPreviousVersionError(
            f"cannot roll back {name}@{alias}: the alias is not set on any version"
        )
    previous = client.get_model_version(name, current).tags.get(previous_tag(alias))
    if not previous:
        raise NoPreviousVersionError(
            f"cannot roll back {name}@{alias}: v{current} has no previous {alias} recorded "
            f"(it was the first one promoted); {alias} stays on v{current}"
        )
    from mlflow.exceptions import MlflowException

    try:
        client.get_model_version(name, previous)
    except MlflowException as err:  # the old version was deleted
        raise RegistryError(
            f"cannot roll back {name}@{alias} to v{previous}: that version no longer exists; "
            f"{alias} stays on v{current}"
        ) from err
    client.set_registered_model_alias(name, alias, previous)
    return _audit(audit_log, name, alias, "rollback", current, previous, reason)


OWNER_TAG = "created_by"  # on a lab's own registered model: the only kind a lab may delete


def reset_lab_model(client: MlflowClient, name: str, owner: str, setting: str) -> None:
    """Start from an empty registered model that ``owner`` (a lab) made; refuse to touch any
    other. A lab that rebuilds its model every run gets the same version numbers every run.

    ``setting`` names the params key a user changes to pick another name.
    """
    from mlflow.exceptions import MlflowException

    try:
        existing = client.get_registered_model(name)
    except MlflowException:  # not registered yet
        existing = None
    if existing is not None:
        if existing.tags.get(OWNER_TAG) != owner:
            raise RegistryError(
                f"registered model {name!r} exists and was not created by this lab (no tag "
                f"{OWNER_TAG}={owner}); set {setting} to a new name"
            )
        client.delete_registered_model(name)
    client.create_registered_model(
        name, tags={OWNER_TAG: owner}, description=f"Made by {owner}; rebuilt on every run."
    )


def read_audit_log(path: Path) -> list[AliasMove]:
    """Every alias move recorded in ``path``, oldest first ([] if there is no log yet)."""
    if not path.exists():
        return []
    return [AliasMove(**json.loads(line)) for line in path.read_text().splitlines() if line]


def missing_lineage(version: ModelVersion) -> list[str]:
    """The :data:`LINEAGE_TAGS` a registered version lacks (empty values count as missing)."""
    return [tag for tag in LINEAGE_TAGS if not version.tags.get(tag)]


@contextlib.contextmanager
def registry_lock(name: str) -> Iterator[None]:
    """Hold the exclusive lock of model ``name`` in this tracking store (blocks until free).

    MLflow has no compare-and-set for aliases or "register unless this hash exists", so
    whoever reads the registry to decide a write holds this lock from the read to the write.
    It is an ``flock`` on a file in the temp dir keyed by (tracking URI, model name): the
    kernel's, so a killed holder never leaves it stale, and it serialises threads too (each
    ``open`` is its own lock). It covers processes on this machine; a shared tracking server
    would need a lock of its own. Not re-entrant: never nest it.
    """
    import fcntl
    import hashlib
    import tempfile

    from labs.common.tracking import tracking_uri

    key = hashlib.sha1(f"{tracking_uri()}|{name}".encode()).hexdigest()[:16]
    path = Path(tempfile.gettempdir()) / f"mlops-labs-registry-{key}.lock"
    with path.open("a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def is_locked_error(err: BaseException) -> bool:
    """SQLite's "database is locked": another writer held the lock longer than the timeout."""
    return "database is locked" in str(err).lower()


def retry_on_locked(
    action: Callable[[], T], *, attempts: int = 5, delay_s: float = 0.2
) -> tuple[T, int]:
    """Run ``action``, retrying (with doubling waits) only on a locked SQLite store.

    Returns the result and how many retries it took. Other errors, and the last locked one,
    propagate: a bounded retry, never a silent loop.
    """
    for attempt in range(attempts):
        try:
            return action(), attempt
        except Exception as err:
            if not is_locked_error(err) or attempt == attempts - 1:
                raise
            time.sleep(delay_s * 2**attempt)
    raise AssertionError("unreachable")  # pragma: no cover


def _existing(client: MlflowClient, name: str, version: str | int) -> str:
    from mlflow.exceptions import MlflowException

    version = str(version)
    try:
        client.get_model_version(name, version)
    except MlflowException as err:  # RESOURCE_DOES_NOT_EXIST
        raise RegistryError(f"{name} has no version {version}: {err}") from err
    return version


def _audit(
    path: Path,
    model: str,
    alias: str,
    action: str,
    from_version: str | None,
    to_version: str | None,
    reason: str,
) -> AliasMove:
    move = AliasMove(
        model=model,
        alias=alias,
        action=action,
        from_version=from_version,
        to_version=to_version,
        reason=reason,
        at=datetime.now(UTC).isoformat(timespec="milliseconds"),
        user=_user(),
    )
    path.parent.mkdir(parents=True, exist_ok=True)
    # One write of one short line in append mode: concurrent writers never interleave lines.
    with path.open("a", encoding="utf-8") as log:
        log.write(json.dumps(asdict(move)) + "\n")
    return move


def _user() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):  # containers without a passwd entry
        return os.environ.get("USER", "unknown")
