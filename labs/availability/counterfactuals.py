"""The availability lab's counterfactuals: the broken parts its claims must catch.

Each one goes through the lab's real path — Envoy's config is written from the parameters,
the replicas get the (broken) readiness condition on their command line, the third replica is
stopped by the (broken) stop function — so every ✗ is measured, not assumed.
"""

from __future__ import annotations

from labs.availability.faults import kill
from labs.availability.lab import run
from labs.availability.params import AvailabilityParams
from labs.common.counterfactuals import Counterfactual, LabCounterfactuals

# Imported by each replica (``--ready-check``): the deep readiness check that needs the store.
STORE_CHECK = "labs.availability.faults:model_store_reachable"

NO_RETRIES = Counterfactual(
    "no-retries",
    "Envoy without a retry policy",
    ("kill_zero_failed", "hung_replica_ejected", "availability_over_run"),
    "The route has no retry policy (and so no per-try timeout): a request in flight on a "
    "replica that dies, or sent to one that hangs, fails instead of going to another replica.",
    params={"num_retries": 0},
)
LIVENESS_CHECK = Counterfactual(
    "liveness-health-check",
    "Envoy health-checks /health (liveness) instead of /ready",
    ("not_ready_gets_no_traffic",),
    "The proxy's health check asks 'is the process alive?': a restarted replica passes as soon "
    "as it listens, and is sent requests it answers 503 while its model is still loading.",
    params={"health_check_path": "/health"},
)
NO_GRACE = Counterfactual(
    "stop-without-grace",
    "replicas are stopped with SIGKILL (no grace period)",
    ("graceful_drain",),
    "The stop sends SIGKILL at once (a zero termination grace period): requests in flight on "
    "the stopping replica are cut off instead of being finished.",
    components={"stop": kill},
)
DEEP_READINESS = Counterfactual(
    "ready-needs-the-store",
    "/ready also requires the model store",
    ("store_gone_keeps_serving",),
    "Readiness checks a dependency the replica only needs at start-up (the model store): when "
    "the store goes away every replica reports not ready, and Envoy takes them all out of "
    "rotation although each still holds its model.",
    components={"ready_check": STORE_CHECK},
)

COUNTERFACTUALS = LabCounterfactuals(
    "availability",
    "availability",
    AvailabilityParams,
    run,
    (NO_RETRIES, LIVENESS_CHECK, NO_GRACE, DEEP_READINESS),
    audit_params={"train_rows": 800, "hold_s": 0.5, "drain_requests": 2},
)
