"""The deployment lab's claims, each decided by the numbers measured through Envoy."""

from __future__ import annotations

import math
from typing import Any

from scipy.stats import binom

from labs.common.results import Claim
from labs.deployment.analysis import Verdict
from labs.deployment.params import DeploymentParams
from labs.deployment.rollout import BlueGreen, Rollout, ShadowRun, Step


def make_claims(
    params: DeploymentParams,
    *,
    versions: dict[str, str],
    champion_now: str | None,
    shadow: ShadowRun,
    rollouts: dict[str, Rollout],
    blue_green: BlueGreen,
    pitfalls: dict[str, Any],
    schedules: dict[str, list[int]],
) -> list[Claim]:
    good, bad = rollouts["good"], rollouts["bad"]
    first = params.canary_steps[0]
    # "The step's share + tolerance": the tolerance is binomial (Envoy draws per request), the
    # same 1 − alpha as the split's interval, so the bound does not fail by bad luck.
    step_n = bad.steps[0].sent if bad.steps else 0
    allowed = float(binom.ppf(1 - params.split_alpha / 2, step_n, first / 100)) if step_n else 0.0
    bound = allowed / step_n if step_n else 0.0
    all_steps = [s for r in (bad, good) for s in r.steps]
    zero: Step = pitfalls["zero_traffic"]
    missing: Verdict = pitfalls["missing"]
    return [
        Claim(
            "canary_good_promoted",
            "A good challenger passes the analysis at every step (5 → 100 %) and becomes "
            "champion through the audited registry",
            good.promoted
            and all(s.verdict.passed for s in good.steps)
            and [s.weight for s in good.steps] == list(params.canary_steps)
            and champion_now == versions["good"]
            and sum(s.failed for s in good.steps) == 0,
            {
                "steps_passed": sum(s.verdict.passed for s in good.steps),
                "steps": len(params.canary_steps),
                "final_weight": good.steps[-1].weight if good.steps else 0,
                "champion_version": int(champion_now or 0),
                "good_version": int(versions["good"]),
                "failed_requests": sum(s.failed for s in good.steps),
                "max_churn_share_diff": max(
                    abs((s.verdict.churn_share or 0) - (s.verdict.champion_churn_share or 0))
                    for s in good.steps
                ),
            },
        ),
        Claim(
            "canary_bad_rolled_back",
            "A bad challenger (shifted predictions) is rolled back at the first step; the "
            "requests it served stay within that step's share (Envoy's counters)",
            bad.rolled_back_at == first
            and len(bad.steps) == 1
            and bad.canary_total <= allowed
            and bad.steps[0].observed <= bound
            and bad.canary_after_rollback == 0,
            {
                "rolled_back_at_weight": bad.rolled_back_at
                if bad.rolled_back_at is not None
                else -1,
                "bad_requests": bad.canary_total,
                "total_requests": bad.total,
                "exposure": bad.exposure,
                "exposure_in_step": bad.steps[0].observed if bad.steps else math.nan,
                "exposure_bound": bound,
                "bad_requests_allowed": allowed,
                "after_rollback": bad.canary_after_rollback,
                "churn_share_bad": _num(bad.steps[0].verdict.churn_share if bad.steps else None),
                "churn_share_champion": _num(
                    bad.steps[0].verdict.champion_churn_share if bad.steps else None
                ),
            },
        ),
        Claim(
            "split_within_ci",
            f"At every step Envoy's observed split lies within the {1 - params.split_alpha:.1%} "
            "binomial (Wilson) interval of the configured weight",
            bool(all_steps) and all(s.weight_in_ci for s in all_steps),
            {
                **{f"good_{s.weight}pct_observed": s.observed for s in good.steps},
                **{f"good_{s.weight}pct_n": s.sent for s in good.steps},
                **{f"bad_{s.weight}pct_observed": s.observed for s in bad.steps},
                "steps_in_ci": sum(s.weight_in_ci for s in all_steps),
                "steps_checked": len(all_steps),
            },
        ),
        Claim(
            "blue_green_zero_failed",
            "Blue-green: all traffic switches to green and back in one admin call each, under "
            "continuous load, with 0 failed requests; rollback time measured",
            blue_green.failed == 0
            and blue_green.blue_after_switch == 0
            and blue_green.green_after_rollback == 0
            and blue_green.by_phase["green"].get("green", 0) > 0
            and blue_green.rollback_s <= params.max_rollback_s,
            {
                "requests": len(blue_green.hits),
                "failed": blue_green.failed,
                "switch_ms": blue_green.switch_s * 1000,
                "rollback_ms": blue_green.rollback_s * 1000,
                "last_green_after_rollback_ms": blue_green.last_green_s * 1000,
                "blue_after_switch": blue_green.blue_after_switch,
                "green_after_rollback": blue_green.green_after_rollback,
                "green_served": blue_green.by_phase["green"].get("green", 0),
            },
        ),
        Claim(
            "shadow_never_answers",
            "Shadow: every client response comes from the champion while each challenger gets "
            "a mirrored copy; offline the good one agrees with the champion, the bad one does not",
            shadow.failed == 0
            and set(shadow.served_versions) == {versions["v1"]}
            and all(n == shadow.requests for n in shadow.mirrored.values())
            and shadow.agreement["good"] >= params.min_shadow_agreement
            and shadow.agreement["bad"] < params.min_shadow_agreement,
            {
                "client_requests": shadow.requests,
                "from_champion": shadow.served_versions.get(versions["v1"], 0),
                "mirrored_good": shadow.mirrored["good"],
                "mirrored_bad": shadow.mirrored["bad"],
                "agreement_good": shadow.agreement["good"],
                "agreement_bad": shadow.agreement["bad"],
                "rows_compared": shadow.rows_compared["good"],
                "p99_ms_champion": _num(shadow.p99_ms["v1"]),
                "p99_ms_good": _num(shadow.p99_ms["good"]),
            },
        ),
        Claim(
            "pitfalls_guarded",
            "Pitfalls guarded: a max weight that is not a multiple of the step is still "
            "reached; a zero-traffic step fails; unreadable metrics fail, not read as 0",
            schedules["naive"][-1] != 50
            and schedules["guarded"][-1] == 50
            and not zero.verdict.passed
            and zero.to_canary == 0
            and not missing.passed,
            {
                "naive_last_weight": schedules["naive"][-1],
                "guarded_last_weight": schedules["guarded"][-1],
                "zero_step_canary_requests": zero.to_canary,
                "zero_step_passed": int(zero.verdict.passed),
                "missing_metrics_passed": int(missing.passed),
            },
        ),
    ]


def _num(value: float | None) -> float:
    return math.nan if value is None else float(value)
