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

NAIVE_PROXY = Counterfactual(
    "liveness-check-and-no-retries",
    "Envoy checks /health (liveness) and has no retry policy",
    ("not_ready_gets_no_traffic", "kill_zero_failed", "hung_replica_ejected",
     "availability_over_run"),
    "The proxy is configured the naive way. Its health check asks 'is the process alive?', so "
    "a restarted replica is sent requests (answered 503) while its model still loads. Its route "
    "has no retry policy (so no per-try timeout): a request in flight on a replica that dies, "
    "or sent to one that hangs, fails instead of going to another replica.",
    params={"health_check_path": "/health", "num_retries": 0},
)  # fmt: skip
WRONG_LIFECYCLE = Counterfactual(
    "store-in-readiness-and-no-grace",
    "/ready also requires the model store; replicas are stopped with SIGKILL",
    ("store_gone_keeps_serving", "graceful_drain"),
    "The replicas' lifecycle is wired wrong. Readiness checks a dependency needed only at "
    "start-up (the model store): when the store goes away every replica reports not ready and "
    "Envoy takes them all out of rotation, although each still holds its model. And the stop "
    "sends SIGKILL at once (no grace period): requests in flight on the stopping replica are "
    "cut off instead of being finished.",
    components={"ready_check": STORE_CHECK, "stop": kill},
)

COUNTERFACTUALS = LabCounterfactuals(
    "availability",
    "availability",
    AvailabilityParams,
    run,
    # Two, each breaking several claims: every run starts four replicas and Envoy, and the
    # whole audit must stay near a minute on an idle machine.
    (NAIVE_PROXY, WRONG_LIFECYCLE),
    audit_params={"train_rows": 800, "hold_s": 0.5, "drain_requests": 2},
)
