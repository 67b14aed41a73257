"""The deployment lab's counterfactuals: the broken parts its claims must catch.

Each one is a part of the lab replaced through ``run()``'s keyword arguments — the canary
controller's knob, its analysis, its weight schedule, the shadow's Envoy config — and goes
through the same Envoy, replicas, metrics and registry as the lab itself.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from labs.common.counterfactuals import Counterfactual, LabCounterfactuals
from labs.common.proxy import Proxy, ProxySpec
from labs.deployment.analysis import AnalysisRules, Verdict, Window, naive_schedule
from labs.deployment.lab import run
from labs.deployment.params import DeploymentParams

TYPO_KEY = "routing.canary_weight"  # the controller's key; Envoy's route reads routing.canary


def set_weight_wrong_key(proxy: Proxy, percent: int) -> None:
    """A controller that writes its weight under a key no route reads: Envoy's runtime takes
    any key (200 OK), so nothing complains and nothing moves."""
    import httpx

    answer = httpx.post(f"{proxy.admin_url}/runtime_modify", params={TYPO_KEY: str(percent)})
    answer.raise_for_status()


def analyse_without_guards(
    canary: Window | None, champion: Window | None, rules: AnalysisRules
) -> Verdict:
    """A hand-rolled analysis: only the request success rate and latency (a proxy's default
    metrics, blind to *what* the model answers); unreadable metrics read as 0; a step with no
    canary traffic passes."""
    empty = Window(requests=0, errors_5xx=0, rows=0, churn_rows=0, p99_ms=math.nan)
    canary, champion = canary or empty, champion or empty
    error_rate = canary.errors_5xx / canary.requests if canary.requests else 0.0
    p99 = 0.0 if math.isnan(canary.p99_ms) else canary.p99_ms
    checks: dict[str, bool | None] = {
        "error_rate": error_rate <= rules.max_error_rate,
        "p99": p99 <= rules.max_p99_ms,
    }
    failed = [name for name, ok in checks.items() if not ok]
    return Verdict(
        not failed,
        "all checks passed" if not failed else f"failed: {', '.join(failed)}",
        checks,
        canary_requests=canary.requests,
        error_rate=error_rate,
        p99_ms=p99,
        churn_share=canary.churn_share if canary.rows else None,
        champion_churn_share=champion.churn_share if champion.rows else None,
    )


def shadow_as_split(ports: dict[str, int], champion: str, shadows: Sequence[str]) -> ProxySpec:
    """A "shadow" set up as a small weighted route to the last challenger (the rest mirrored):
    some users get the challenger's answers, and it sees only part of the traffic."""
    *mirrored, routed = shadows
    return ProxySpec({n: [ports[n]] for n in ports}, primary=champion, canary=routed,
                     canary_percent=10, mirrors=tuple(mirrored))  # fmt: skip


WRONG_KEY = Counterfactual(
    "weight-under-a-wrong-runtime-key",
    "the controller sets the weight under a runtime key no route reads",
    ("split_within_ci", "canary_good_promoted", "blue_green_zero_failed"),
    "The controller writes routing.canary_weight; Envoy's route reads routing.canary. Envoy "
    "accepts any key, so every step, the blue-green switch and the rollback change nothing.",
    components={"set_weight": set_weight_wrong_key},
)
HAND_ROLLED = Counterfactual(
    "hand-rolled-rollout",
    "a hand-rolled controller: analysis without guards, shadow as a weighted route",
    ("canary_bad_rolled_back", "pitfalls_guarded", "shadow_never_answers"),
    "A rollout tool written in a hurry. Its analysis looks at errors and latency only (the bad "
    "model answers 200, fast, and wrong), reads missing metrics as 0, passes a step without "
    "traffic, and its weight loop stops short of a max that is not a multiple of the step. Its "
    "'shadow' is a 10 % weighted route, not a mirror: one user in ten gets the bad model's "
    "answers.",
    components={
        "analysis": analyse_without_guards,
        "schedule": naive_schedule,
        "shadow_routes": shadow_as_split,
    },
)

COUNTERFACTUALS = LabCounterfactuals(
    "deployment",
    "deployment",
    DeploymentParams,
    run,
    # Two, each breaking several claims: the whole audit must stay near a minute.
    (WRONG_KEY, HAND_ROLLED),
    audit_params={
        "train_rows": 1000,
        "requests_per_step": 300,  # 0 of 300 at 5 % lies outside the 99.9 % interval; 0 of 200 not
        "shadow_requests": 60,
        "switch_hold_s": 0.5,
    },  # fmt: skip
)
