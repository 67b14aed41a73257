"""The stress test's load: run by locust as a subprocess (``locust -f … --headless``), never
imported — locust patches the standard library with gevent at import.

A step ramp of users (``STRESS_USERS``, each step ``STRESS_STEP_SECONDS`` long); each user posts
one-row scoring requests at a fixed pace (``STRESS_PACING_S``), so offered load grows with the
users until the server cannot keep up. Every request's latency, success and the number of
running users are written to ``STRESS_SAMPLES`` (JSON lines) when locust quits.
"""

import json
import os
import time

from locust import FastHttpUser, LoadTestShape, constant_pacing, events, task

USERS = [int(u) for u in os.environ["STRESS_USERS"].split(",")]
STEP_SECONDS = float(os.environ["STRESS_STEP_SECONDS"])
PACING_S = float(os.environ["STRESS_PACING_S"])
SAMPLES = os.environ["STRESS_SAMPLES"]
with open(os.environ["STRESS_BODIES"]) as bodies_file:
    BODIES = [line.strip() for line in bodies_file if line.strip()]

_samples: list[tuple[float, int, float, bool]] = []
_state = {"environment": None}


@events.init.add_listener
def _remember(environment, **_kwargs):
    _state["environment"] = environment


@events.request.add_listener
def _record(response_time, exception, **_kwargs):
    runner = _state["environment"].runner
    _samples.append((time.time(), runner.user_count, float(response_time), exception is None))


@events.quitting.add_listener
def _write(**_kwargs):
    with open(SAMPLES, "w") as out:
        for t, users, ms, ok in _samples:
            out.write(json.dumps({"t": t, "users": users, "ms": ms, "ok": ok}) + "\n")


class StepRamp(LoadTestShape):
    """Hold each user count for STEP_SECONDS, then stop."""

    def tick(self):
        step = int(self.get_run_time() // STEP_SECONDS)
        if step >= len(USERS):
            return None
        return USERS[step], 1000  # spawn at once: a step starts at its full user count


class Scorer(FastHttpUser):
    wait_time = constant_pacing(PACING_S)
    network_timeout = 10.0
    connection_timeout = 5.0

    def on_start(self):
        self.turn = 0

    @task
    def predict(self):
        self.turn += 1
        self.client.post(
            "/predict",
            data=BODIES[self.turn % len(BODIES)],
            headers={"content-type": "application/json"},
        )
