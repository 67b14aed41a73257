"""The testing lab's claims: for each kind of test, the correct candidate passes and the
defective one fails — decided from the measured numbers, never set by hand."""

from __future__ import annotations

from typing import Any

from labs.common.results import Claim
from labs.testing import matrix

TOLERANCE_DP = matrix.TOLERANCE_DP


def unit_verdict(results: list[Any]) -> dict[str, Any]:
    return {
        "passed": all(r.passed for r in results),
        "failed_tests": [r.name for r in results if not r.passed],
        "examples": {r.name: r.examples for r in results},
        "failing_batch_rows": {r.name: r.failing_batch_rows for r in results if not r.passed},
    }


def stress_verdicts(results: dict[str, Any], params: Any) -> dict[str, Any]:
    ramps, ensemble = results["stress"], results["slow_ensemble"]
    good, slow = ramps["correct"], ramps["slow_ensemble"]
    top = max(params.stress_users)
    # no knee within the ramp: the knee lies beyond its last step
    good_knee = good.knee_users if good.knee_users is not None else 2 * top
    return {
        "correct_knee_users": good.knee_users,
        "slow_knee_users": slow.knee_users,
        "knee_ratio": good_knee / slow.knee_users if slow.knee_users else 0.0,
        "correct_p99_ms": [s["p99_ms"] for s in good.steps],
        "slow_p99_ms": [s["p99_ms"] for s in slow.steps],
        "correct_rps": [s["rps"] for s in good.steps],
        "slow_rps": [s["rps"] for s in slow.steps],
        "correct_error_rate_max": max(s["error_rate"] for s in good.steps),
        "slow_error_rate_max": max(s["error_rate"] for s in slow.steps),
        "users": list(params.stress_users),
        "slow_copies": ensemble["copies"],  # sized so one call costs ~slow_request_ms here
        "slow_one_row_ms": ensemble["one_row_ms"],
        "slow_max_abs_dp_vs_correct": ensemble["max_abs_dp_vs_correct"],
        "requests": {"correct": good.requests, "slow_ensemble": slow.requests},
        "locust_csv_requests": {
            "correct": good.locust_csv_requests,
            "slow_ensemble": slow.locust_csv_requests,
        },
    }


def make_claims(params: Any, results: dict[str, Any]) -> list[Claim]:
    """One claim per kind of test (both sides measured), then the suite as a whole."""
    unit = {k: unit_verdict(v) for k, v in results["unit"].items()}
    g = results["gate"]
    good_gate, bad_gate = g["verdicts"]["correct"], g["verdicts"]["degraded"]
    inter = results["integration"]
    ok, renamed, corrupt = inter["correct"], inter["renamed_column"], inter["corrupt_request"]
    stress = stress_verdicts(results, params)
    ab = results["ab"]
    rob = results["robustness"]
    rg, rb = rob["correct"], rob["overfit_unvalidated"]

    claims = [
        Claim(
            "unit_contract_catches_batch_statistics",
            "Unit tests of the transform's contract (hypothesis: shape/dtype, row order, batch "
            "independence; an example pinning each one-hot column) all pass on the fitted "
            "preprocessing step and fail on the hand-written transform that uses the batch's "
            "statistics and another category order.",
            passed=unit["correct"]["passed"]
            and "batch_independence" in unit["batch_statistics"]["failed_tests"]
            and "category_columns" in unit["batch_statistics"]["failed_tests"],
            measured={"correct": unit["correct"], "defective": unit["batch_statistics"]},
        ),
        Claim(
            "integration_over_http",
            "Over real HTTP the correct model answers every request with the in-process "
            f"probabilities (|Δp| ≤ {TOLERANCE_DP:g}) and refuses a corrupt row with a 422; the "
            "model trained on a renamed column loads and reports ready, passes in process, "
            "and fails every request.",
            passed=ok["failed_requests"] == 0
            and ok["max_abs_dp"] <= TOLERANCE_DP
            and ok["labels_differing"] == 0
            and corrupt["status"] == 422
            and renamed["ok_requests"] == 0
            and renamed["failed_requests"] == renamed["requests"] > 0,
            measured={
                "correct": {k: v for k, v in ok.items() if k != "first_error"},
                "renamed_column": renamed,
                "corrupt_request": corrupt,
            },
        ),
        Claim(
            "performance_gate",
            f"The gate (ROC-AUC ≥ {params.min_roc_auc}, recall at precision "
            f"{params.precision_target} ≥ {params.min_recall_at_precision}, calibration error ≤ "
            f"{params.max_calibration_error}, ROC-AUC above the DummyClassifier and the champion "
            f"by ≥ {params.noise_sigmas:g}σ of seed noise) passes the correct candidate and "
            "fails the degraded one with messages naming metric, value and threshold.",
            passed=good_gate.passed
            and not bad_gate.passed
            and g["thresholds"]["margin"] > 0
            and all(
                any(m in f for m in good_gate.metrics) and "threshold" in f
                for f in bad_gate.failures
            ),
            measured={
                "seed_noise_roc_auc_std": g["noise"]["roc_auc_std"],
                "margin": g["thresholds"]["margin"],
                "correct": good_gate.metrics,
                "degraded": bad_gate.metrics,
                "champion": g["metrics"]["champion"],
                "dummy": g["metrics"]["dummy"],
                "gain_over_champion": good_gate.metrics["roc_auc"]
                - g["metrics"]["champion"]["roc_auc"],
                "degraded_failures": bad_gate.failures,
            },
        ),
        Claim(
            "stress_knee",
            f"Under a locust ramp of {list(params.stress_users)} users the correct model keeps "
            f"p99 ≤ {params.p99_budget_ms:g} ms further than the bagged ensemble that gives the "
            "same answers at many times the work per request: its knee "
            f"comes at ≥ {params.knee_ratio:g}× the load (no knee in the ramp counts as twice "
            "the top step).",
            passed=stress["slow_knee_users"] is not None
            and stress["knee_ratio"] >= params.knee_ratio,
            measured=stress,
        ),
        Claim(
            "ab_power",
            f"The power analysis asks for {ab['n_per_arm']} customers per arm; over "
            f"{ab['power_fixed'].n} simulated experiments the true uplift is detected at about "
            f"the planned power {params.ab_power} (± {params.ab_power_tolerance}).",
            passed=abs(ab["power_fixed"].value - params.ab_power) <= params.ab_power_tolerance,
            measured=_rates(ab, "power_fixed", extra=("n_per_arm", "p_control", "p_treatment")),
        ),
        Claim(
            "ab_aa_false_positives",
            f"An A/A test read once at the planned horizon is 'significant' in about α = "
            f"{params.ab_alpha} of experiments (the 95 % interval covers α).",
            passed=ab["aa_fixed"].covers(params.ab_alpha),
            measured=_rates(ab, "aa_fixed", extra=("critical_z", "ztest_crosscheck_abs_diff")),
        ),
        Claim(
            "ab_peeking_inflates",
            f"Peeking after each of {params.ab_looks} batches and stopping at the first p < α "
            f"raises A/A false positives ≥ {params.peeking_inflation:g}-fold (interval above α); "
            "a Pocock boundary brings them back to α (interval covers α).",
            passed=ab["aa_peeking"].low > params.ab_alpha
            and ab["aa_peeking"].value >= params.peeking_inflation * params.ab_alpha
            and ab["aa_pocock"].covers(params.ab_alpha),
            measured={
                **_rates(ab, "aa_peeking"),
                **_rates(ab, "aa_pocock", extra=("pocock_z",)),
                **_rates(ab, "power_pocock"),
                "inflation": ab["aa_peeking"].value / params.ab_alpha,
                "peeking_by_looks": {str(k): v for k, v in ab["peeking_by_looks"].items()},
            },
        ),
        Claim(
            "robustness_checklist",
            f"CheckList tests: the validated model flips ≤ {params.invariance_max_flip:.0%} of "
            f"labels when age moves ±{params.invariance_years} years, never lowers risk for one "
            "more support call, and refuses every corrupt input naming the field; the overfit, "
            "unvalidated tree breaks all three.",
            passed=_robust_ok(rg, params) and _robust_broken(rb, params),
            measured={
                name: {
                    "flipped_share": r["invariance"]["flipped_share"],
                    "directional_violation_share": r["directional"]["violation_share"],
                    "corrupt_refused": r["corrupt"]["refused"],
                    "corrupt_crashed": r["corrupt"]["crashed"],
                    "corrupt_silent": r["corrupt"]["silent"],
                    "corrupt_cases": r["corrupt"]["cases"],
                    "outcomes": r["corrupt"]["outcomes"],
                }
                for name, r in rob.items()
            },
        ),
    ]
    table = results["matrix"]
    told = matrix.verdict(table)
    claims.append(
        Claim(
            "every_kind_tells_them_apart",
            "Each kind of model test catches the fault planted for it, and every other kind run "
            "on that fault lets it through (unit tests, gate and robustness run on every "
            "candidate, integration and stress on the served ones; a fault meets ≥ 2 other "
            "kinds): no kind stands in for another, and none fails the correct candidate.",
            passed=told.pop("passed"),
            measured={
                **told,
                "planted_for": dict(matrix.FAULTS),
                "fails": {row: dict(cells) for row, cells in table.items()},
            },
        )
    )
    return claims


def _rates(ab: dict[str, Any], key: str, extra: tuple[str, ...] = ()) -> dict[str, Any]:
    r = ab[key]
    return {
        key: r.value,
        f"{key}_ci_low": r.low,
        f"{key}_ci_high": r.high,
        "simulations": r.n,
        **{k: ab[k] for k in extra},
    }


def _robust_ok(r: dict[str, Any], params: Any) -> bool:
    return (
        r["invariance"]["flipped_share"] <= params.invariance_max_flip
        and r["directional"]["violation_share"] == 0
        and r["corrupt"]["refused"] == r["corrupt"]["cases"]
    )


def _robust_broken(r: dict[str, Any], params: Any) -> bool:
    return (
        r["invariance"]["flipped_share"] > params.invariance_max_flip
        and r["directional"]["violation_share"] > 0
        and r["corrupt"]["crashed"] + r["corrupt"]["silent"] > 0
    )
