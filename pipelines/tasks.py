"""What every flow shares: a plain step function turned into a Prefect task the same way, and
the parameter types Prefect validates before a run starts."""

from collections.abc import Callable
from typing import Annotated, Any

from prefect import task
from prefect.cache_policies import NO_CACHE
from pydantic import Field

# A rate, share, score or threshold on 0–1 (ROC-AUC, a quality floor).
Fraction = Annotated[float, Field(ge=0, le=1)]
# A share that must be above 0 to mean anything (an alert at a drifted share of 0 always fires).
NonZeroFraction = Annotated[float, Field(gt=0, le=1)]


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
