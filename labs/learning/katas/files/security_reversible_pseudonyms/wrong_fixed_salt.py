"""A wrong fix: a salt written in the code — everyone with the code has it, and it is the same
whatever the key (a new key does not change a single pseudonym)."""

import hashlib

SALT = b"churn-analytics-2026"


def pseudonym(key: bytes, value: str) -> str:
    return hashlib.sha256(SALT + value.encode()).hexdigest()
