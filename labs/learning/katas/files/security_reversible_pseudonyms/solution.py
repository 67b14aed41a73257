"""Pseudonyms for personal data (e-mails, customer ids) before it reaches the analytics store.

``key`` is the project's secret pseudonymisation key (32 random bytes, kept out of git).
The same value must always give the same pseudonym, so tables still join on it.
"""

import hashlib
import hmac


def pseudonym(key: bytes, value: str) -> str:
    """The pseudonym of ``value`` (hex)."""
    # Keyed: without the key nobody can hash a list of candidate e-mails and look them up
    # (an unkeyed hash of a guessable value is reversed by a dictionary in milliseconds).
    # Deterministic: one value, one pseudonym, so joins still work.
    return hmac.new(key, value.encode(), hashlib.sha256).hexdigest()
