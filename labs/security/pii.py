"""Personal data: keyed pseudonyms (HMAC-SHA256), the dictionary attack that reverses a plain
hash, joins on pseudonyms, and erasure of one customer from every store.

Why a key: e-mail addresses are not random. An attacker who gets a table of SHA-256(e-mail)
hashes builds candidate addresses from common first names, last names and mail domains, hashes
them all and looks the table up — a hash without a secret only hides what is hard to guess.
HMAC with a 256-bit key kept outside the data (environment variable or a key file outside
git) gives stable pseudonyms (the same person always maps to the same value, so joins work)
that nobody without the key can recompute.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import secrets
import sqlite3
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

KEY_ENV = "LABS_PII_KEY"  # hex; if unset, a key file is generated under the lab's out dir

FIRST_NAMES = (
    "anna", "ben", "clara", "david", "emma", "felix", "greta", "hannah", "jonas", "julia",
    "karl", "lea", "leon", "lena", "lukas", "maria", "max", "mia", "noah", "paul", "sara",
    "sophie", "tim", "tom", "laura", "jan", "nina", "eva", "finn", "ida", "moritz", "lina",
    "elias", "marie", "emil", "johanna", "anton", "frieda", "oskar", "ella",
)  # fmt: skip
LAST_NAMES = (
    "mueller", "schmidt", "schneider", "fischer", "weber", "meyer", "wagner", "becker",
    "schulz", "hoffmann", "koch", "richter", "klein", "wolf", "schroeder", "neumann",
    "schwarz", "braun", "zimmermann", "krueger", "hartmann", "lange", "werner", "krause",
    "lehmann", "koehler", "maier", "walter", "koenig", "huber",
)  # fmt: skip
DOMAINS = ("mail.example", "post.example", "web.example", "inbox.example", "net.example")
NUMBERS = 30  # addresses like anna.weber7@…: a suffix below this


def load_or_create_key(key_dir: Path) -> tuple[bytes, str]:
    """The pseudonymisation key and where it came from: ``$LABS_PII_KEY`` (hex) if set, else
    ``key_dir/pii.key`` (created once, mode 0600). ``key_dir`` lies under the lab's reports
    directory or a temporary one — never in the git tree."""
    if os.environ.get(KEY_ENV):
        return bytes.fromhex(os.environ[KEY_ENV]), f"${KEY_ENV}"
    path = key_dir / "pii.key"
    if not path.exists():
        key_dir.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as out:
            out.write(secrets.token_hex(32))
    return bytes.fromhex(path.read_text().strip()), str(path)


def pseudonym(key: bytes, value: str) -> str:
    """HMAC-SHA256 of ``value`` under ``key`` (hex, 64 characters)."""
    return hmac.new(key, value.encode(), hashlib.sha256).hexdigest()


def plain_sha256(value: str) -> str:
    return hashlib.sha256(value.encode()).hexdigest()


def candidate_emails() -> list[str]:
    """Every address of the forms first.last@, firstlast@, first.last<NN>@ on common domains:
    what an attacker can enumerate from public name lists."""
    out = []
    for first in FIRST_NAMES:
        for last in LAST_NAMES:
            for domain in DOMAINS:
                out.append(f"{first}.{last}@{domain}")
                out.append(f"{first}{last}@{domain}")
                out.extend(f"{first}.{last}{n}@{domain}" for n in range(NUMBERS))
    return out


def make_customers(n: int, seed: int) -> pd.DataFrame:
    """``n`` customers with an id, an e-mail address (unique) and the churn features."""
    from labs.common.data import make_churn_data

    rng = np.random.default_rng(seed)
    emails: set[str] = set()
    while len(emails) < n:
        first, last = rng.choice(FIRST_NAMES), rng.choice(LAST_NAMES)
        domain, number = rng.choice(DOMAINS), int(rng.integers(0, NUMBERS))
        style = rng.integers(0, 3)
        local = (f"{first}.{last}", f"{first}{last}", f"{first}.{last}{number}")[style]
        emails.add(f"{local}@{domain}")
    frame = make_churn_data(n, seed=seed)
    frame.insert(0, "email", sorted(emails, key=lambda e: hashlib.md5(e.encode()).hexdigest()))
    frame.insert(0, "customer_id", [f"C{100000 + i}" for i in range(n)])
    return frame


def make_support_tickets(customers: pd.DataFrame, seed: int) -> pd.DataFrame:
    """A second table about the same people: support tickets keyed by customer id."""
    rng = np.random.default_rng(seed)
    counts = rng.poisson(1.5, len(customers))
    ids = np.repeat(customers["customer_id"].to_numpy(), counts)
    return pd.DataFrame(
        {"customer_id": ids, "minutes": rng.integers(2, 60, len(ids)), "ticket": range(len(ids))}
    )


def pseudonymise(
    frame: pd.DataFrame,
    key: bytes,
    columns: Sequence[str],
    pseudonym_of: Callable[[bytes, str], str] = pseudonym,
) -> pd.DataFrame:
    """A copy of ``frame`` with each column in ``columns`` replaced by its keyed pseudonym."""
    out = frame.copy()
    for column in columns:
        out[column] = [pseudonym_of(key, str(v)) for v in out[column]]
    return out


@dataclass(frozen=True)
class AttackResult:
    """A dictionary attack on a column of hashes."""

    targets: int
    candidates: int
    recovered: int
    seconds: float

    @property
    def recovered_share(self) -> float:
        return self.recovered / self.targets if self.targets else 0.0


def dictionary_attack(hashes: Iterable[str], candidates: Sequence[str]) -> AttackResult:
    """Hash every candidate with plain SHA-256 and look the targets up: how many come back."""
    start = time.perf_counter()
    table = {plain_sha256(c): c for c in candidates}
    targets = list(hashes)
    recovered = sum(h in table for h in targets)
    return AttackResult(len(targets), len(candidates), recovered, time.perf_counter() - start)


# --- the stores and erasure -----------------------------------------------------------------

STORE_TABLES = ("customers", "tickets", "predictions")


def write_store(path: Path, tables: dict[str, pd.DataFrame]) -> None:
    """The lab's warehouse: one SQLite file, one table per frame, indexed by ``customer_id``."""
    with sqlite3.connect(path) as conn:
        for name, frame in tables.items():
            frame.to_sql(name, conn, if_exists="replace", index=False)
            conn.execute(f"CREATE INDEX IF NOT EXISTS ix_{name} ON {name}(customer_id)")


def rows_of(path: Path, customer: str) -> dict[str, int]:
    """Rows per table in the warehouse that belong to the pseudonymised ``customer``."""
    with sqlite3.connect(path) as conn:
        return {
            t: conn.execute(
                f"SELECT COUNT(*) FROM {t} WHERE customer_id = ?", (customer,)
            ).fetchone()[0]
            for t in STORE_TABLES
        }


def table_sizes(path: Path) -> dict[str, int]:
    with sqlite3.connect(path) as conn:
        return {t: conn.execute(f"SELECT COUNT(*) FROM {t}").fetchone()[0] for t in STORE_TABLES}


def erase_from_store(path: Path, customer: str) -> int:
    """Delete every row of ``customer`` from every warehouse table in one transaction, and
    vacuum so the deleted pages do not linger in the file; the number of rows deleted."""
    with sqlite3.connect(path) as conn:
        deleted = sum(
            conn.execute(f"DELETE FROM {t} WHERE customer_id = ?", (customer,)).rowcount
            for t in STORE_TABLES
        )
    with sqlite3.connect(path) as conn:
        conn.execute("VACUUM")
    return deleted
