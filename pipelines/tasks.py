"""Turning a plain step function into a Prefect task, the same way in every flow."""

from collections.abc import Callable
from typing import Any

from prefect import task
from prefect.cache_policies import NO_CACHE


def as_task(fn: Callable[..., Any], retries: int = 0) -> Any:
    """``fn`` as a task that retries with backoff (1, 2, 4 s) and never caches.

    Inputs are frames, models and stateful objects: a retry must re-run the step, never reuse
    a stale result. Give retries only to steps that can fail transiently (file, registry and
    network I/O); a retry of a check would only repeat its verdict.
    """
    return task(
        fn,
        retries=retries,
        retry_delay_seconds=[1, 2, 4][:retries] or 0,
        cache_policy=NO_CACHE,
        log_prints=True,
    )
