"""Pseudonyms for personal data (e-mails, customer ids) before it reaches the analytics store.

``key`` is the project's secret pseudonymisation key (32 random bytes, kept out of git).
The same value must always give the same pseudonym, so tables still join on it.
"""

import hashlib


def pseudonym(key: bytes, value: str) -> str:
    """The pseudonym of ``value`` (hex)."""
    return hashlib.sha256(value.encode()).hexdigest()
