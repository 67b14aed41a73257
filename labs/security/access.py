"""Access control for the shared serving app: API keys with scopes, stored hashed, compared in
constant time, rate-limited per key, admin requests written to the hash-chained audit log.

- No or unknown key → 401; a valid key without the route's scope → 403; over its rate → 429.
- Keys are random 256-bit tokens. The server stores only their SHA-256 (a fast hash is right
  for high-entropy tokens; passwords would need a slow one), so a leaked key file lets nobody
  call the API. Lookup compares the presented key's hash with *every* stored hash using
  ``hmac.compare_digest`` and no early exit, so response time does not reveal how much of a
  guess was right.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import secrets
import threading
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response

HEADER = "x-api-key"
PUBLIC_PATHS = frozenset({"/health", "/ready"})
PREDICT, ADMIN = "predict", "admin"


def required_scope(path: str) -> str | None:
    """The scope a route needs: none for health probes, ``predict`` for scoring, ``admin`` for
    everything else (metrics, monitoring pushes, /admin/*, the OpenAPI docs)."""
    if path in PUBLIC_PATHS:
        return None
    return PREDICT if path == "/predict" else ADMIN


@dataclass(frozen=True)
class StoredKey:
    key_id: str
    sha256: str
    scopes: tuple[str, ...]


def hash_key(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def issue_keys(scopes: dict[str, tuple[str, ...]]) -> tuple[dict[str, str], list[StoredKey]]:
    """New random keys: the plaintext (handed to each client once) and what the server stores."""
    plain = {key_id: secrets.token_urlsafe(32) for key_id in scopes}
    stored = [StoredKey(k, hash_key(plain[k]), tuple(s)) for k, s in scopes.items()]
    return plain, stored


def write_key_file(path: Path, stored: list[StoredKey]) -> None:
    path.write_text(json.dumps([k.__dict__ for k in stored], indent=1))


def read_key_file(path: Path) -> list[StoredKey]:
    return [
        StoredKey(d["key_id"], d["sha256"], tuple(d["scopes"]))
        for d in json.loads(path.read_text())
    ]


def find_key(presented: str, stored: list[StoredKey]) -> StoredKey | None:
    """The stored key whose hash equals the presented key's, compared in constant time against
    every entry (no early exit)."""
    digest = hash_key(presented).encode()
    found = None
    for entry in stored:
        if hmac.compare_digest(digest, entry.sha256.encode()):
            found = entry
    return found


class RateLimiter:
    """A fixed window per key: at most ``limit`` requests per ``window_s`` seconds."""

    def __init__(self, limit: int, window_s: float) -> None:
        self.limit, self.window_s = limit, window_s
        self._counts: dict[str, tuple[float, int]] = {}
        self._lock = threading.Lock()

    def allow(self, key_id: str, now: float | None = None) -> tuple[bool, float]:
        """(allowed, seconds until the window resets)."""
        now = time.monotonic() if now is None else now
        with self._lock:
            start, count = self._counts.get(key_id, (now, 0))
            if now - start >= self.window_s:
                start, count = now, 0
            allowed = count < self.limit
            self._counts[key_id] = (start, count + 1 if allowed else count)
            return allowed, max(0.0, self.window_s - (now - start))


def protect(
    app: FastAPI, stored: list[StoredKey], limiter: RateLimiter, audit_log: Path
) -> FastAPI:
    """Put the key check in front of every route of ``app``, add ``GET /admin/audit`` (verifies
    the audit chain) and write every admin request — allowed or not — to ``audit_log``."""
    from labs.security import audit

    @app.get("/admin/audit")
    async def audit_state() -> dict[str, object]:
        """Verify the audit chain (admin scope)."""
        result = audit.verify(audit_log)
        return {"entries": result.entries, "ok": result.ok, "head": result.head}

    @app.middleware("http")
    async def api_keys(
        request: Request, call_next: Callable[[Request], Awaitable[Response]]
    ) -> Response:
        scope = required_scope(request.url.path)
        if scope is None:
            return await call_next(request)
        presented = request.headers.get(HEADER)
        key = find_key(presented, stored) if presented else None
        if key is None:
            outcome = JSONResponse(
                {"detail": f"missing or unknown API key (header {HEADER})"},
                401,
                headers={"WWW-Authenticate": "ApiKey"},
            )
        elif scope not in key.scopes:
            outcome = JSONResponse({"detail": f"key {key.key_id!r} lacks scope {scope!r}"}, 403)
        else:
            allowed, retry = limiter.allow(key.key_id)
            outcome = (
                None
                if allowed
                else JSONResponse(
                    {"detail": f"rate limit of key {key.key_id!r} exceeded"},
                    429,
                    headers={"Retry-After": str(max(1, round(retry)))},
                )
            )
        response = outcome if outcome is not None else await call_next(request)
        if scope == ADMIN:
            audit.append(
                audit_log,
                actor=key.key_id if key else "anonymous",
                action=f"{request.method} {request.url.path}",
                status=response.status_code,
            )
        return response

    return app
