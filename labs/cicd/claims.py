"""The cicd lab's claims, each decided by the numbers the run measured."""

from __future__ import annotations

from typing import Any

from scipy import stats

from labs.cicd.changes import Trained
from labs.cicd.gate import GATE_TAG, GateDecision
from labs.cicd.params import CicdParams
from labs.common.results import Claim

DEGRADING = ("dropped_feature", "leaky_feature", "preprocessing_bug")
LINEAGE = ("git_commit", "data_md5", "requirements_lock_sha256", "dvc_lock_sha256")
LEVEL = 0.05  # one-sided level of the false-promotion test
NO_MARGIN_RATE = 0.5  # a no-op beats an equal model half the time when any gain promotes


def false_promotion_test(promoted: int, pairs: int, target: float) -> dict[str, float]:
    """Exact one-sided binomial test of "false-promotion rate ≤ ``target``" on ``pairs``
    independent no-op pairs: its p-value, the count that would reject it, and its power
    against the rate of a gate without margin (½)."""
    reject_at = int(stats.binom.isf(LEVEL, pairs, target)) + 1
    return {
        "p_value_rate_above_target": float(stats.binom.sf(promoted - 1, pairs, target)),
        "promotions_that_would_reject": reject_at,
        "power_against_no_margin": float(stats.binom.sf(reject_at - 1, pairs, NO_MARGIN_RATE)),
    }


def names_its_numbers(decision: GateDecision) -> bool:
    """Every failed check's message names its metric, its value and its threshold."""
    return bool(decision.failed) and all(
        c.metric in c.message
        and f"{c.value:.4f}" in c.message
        and f"{c.threshold:.4f}" in c.message
        for c in decision.failed
    )


def make_claims(
    p: CicdParams,
    noise: dict[str, Any],
    champion: Trained,
    trained: dict[str, Trained],
    decisions: dict[str, GateDecision],
    staged: dict[str, str],
    registered: dict[str, Any],
    tags: dict[str, str],
    change: dict[str, Any],
    release: dict[str, Any],
) -> list[Claim]:
    """The six claims, in the order of the interview answer."""
    good = decisions["better_feature"]
    good_version = registered.get("better_feature")
    good_tags = dict(good_version.tags) if good_version is not None else {}
    champ = champion.gate_metrics
    gated = sorted(r for r, mv in registered.items() if mv.tags.get(GATE_TAG) == "passed")
    leak, leak_d = trained["leaky_feature"].gate_metrics, decisions["leaky_feature"]
    honest_offline = max(
        t.gate_metrics["offline_roc_auc"] for n, t in trained.items() if n != "leaky_feature"
    )
    data = decisions.get("new_data")
    code_checks = [c.name for c in good.checks]
    test = false_promotion_test(noise["noop_promoted"], noise["noop_pairs"], p.max_false_promotion)
    retrained = trained.get("new_data")
    audit = release["audit"] or {}
    return [
        Claim(
            "margin_from_seed_noise",
            f"The margin is {p.noise_sigmas:g}σ of seed noise (the champion's recipe retrained on "
            f"{noise['seeds']} fresh samples). On {noise['noop_pairs']} other pairs of retrains — "
            "a no-op change against an equal model — the gate promotes at most "
            f"{p.max_false_promotion:.0%} of them: an exact binomial test does not find the "
            "false-promotion rate above that, and would catch a gate without margin (½) with "
            "≥ 90 % power.",
            passed=noise["sigma"] > 0
            and test["power_against_no_margin"] >= 0.9
            and test["p_value_rate_above_target"] > LEVEL,
            measured={
                **noise,
                "false_promotion_rate": noise["noop_promoted"] / noise["noop_pairs"],
                "target": p.max_false_promotion,
                **test,
            },
        ),
        Claim(
            "good_change_staged",
            "A better feature (support_calls) passes every check, beats the champion by more than "
            "the margin, and is registered with alias staging and commit, data and lock hashes "
            "as tags.",
            passed=good.passed
            and "better_feature" in staged
            and release["staged_version"] == staged.get("better_feature")
            and all(good_tags.get(k) == tags[k] for k in LINEAGE)
            and good_tags.get(GATE_TAG) == "passed",
            measured={
                "roc_auc": good.metrics["roc_auc"],
                "champion_roc_auc": champ["roc_auc"],
                "gain": good.metrics["roc_auc"] - champ["roc_auc"],
                "margin": noise["margin"],
                "accuracy": good.metrics["accuracy"],
                "checks_passed": sum(c.passed for c in good.checks),
                "checks": len(good.checks),
                "version": staged.get("better_feature"),
                "lineage_tags_recorded": sum(bool(good_tags.get(k)) for k in LINEAGE),
                **{k: good_tags.get(k) for k in ("git_commit", "data_md5")},
            },
        ),
        Claim(
            "degrading_changes_fail",
            "A dropped feature, a leaky feature and a preprocessing bug each fail the gate with "
            "a message naming metric, value and threshold; none is staged.",
            passed=all(
                not decisions[n].passed and names_its_numbers(decisions[n]) for n in DEGRADING
            )
            and not set(DEGRADING) & set(staged)
            and gated == sorted(["champion", *staged]),
            measured={
                **{f"{n}.roc_auc": decisions[n].metrics["roc_auc"] for n in DEGRADING},
                **{f"{n}.failed_checks": [c.name for c in decisions[n].failed] for n in DEGRADING},
                **{f"{n}.reason": decisions[n].reason for n in DEGRADING},
                "gated_versions": gated,
            },
        ),
        Claim(
            "leak_caught_by_time_split",
            "The leaky feature looks best offline (random split of the training table) but "
            f"loses its edge on the next month; the gap exceeds {p.max_offline_gap:g} and the "
            "time-split check fails it.",
            passed=leak["offline_roc_auc"] > honest_offline
            and leak["offline_holdout_gap"] > p.max_offline_gap
            and "offline_matches_holdout" in [c.name for c in leak_d.failed]
            and all(
                t.gate_metrics["offline_holdout_gap"] <= p.max_offline_gap
                for n, t in trained.items()
                if n not in ("leaky_feature", "preprocessing_bug")
            ),
            measured={
                "offline_roc_auc": leak["offline_roc_auc"],
                "holdout_roc_auc": leak["roc_auc"],
                "gap": leak["offline_holdout_gap"],
                "max_gap": p.max_offline_gap,
                "best_honest_offline_roc_auc": honest_offline,
                "bug_offline_roc_auc": trained["preprocessing_bug"].gate_metrics["offline_roc_auc"],
                "bug_holdout_roc_auc": trained["preprocessing_bug"].gate_metrics["roc_auc"],
            },
        ),
        Claim(
            "data_change_triggers_gate",
            "A new data version, committed, changes only dvc.lock in git; the workflow runs for "
            "it (and for a code commit, not for a docs commit), retrains on the data dvc.lock "
            "pins, and the same gate checks decide on a model whose scores differ from the "
            "champion's.",
            passed=change["changed_files"] == ["dvc.lock"]
            and all(change["triggers"].values())
            and all(change["code_change_triggers"].values())
            and not any(change["docs_change_triggers"].values())
            and change["new_data_md5"] != change["old_data_md5"]
            and change["data_md5_read"] == change["new_data_md5"]
            and data is not None
            and retrained is not None
            and [c.name for c in data.checks] == code_checks
            and retrained.gate_metrics["roc_auc"] != champ["roc_auc"],
            measured={
                "changed_files": change["changed_files"],
                "triggers_push": change["triggers"]["push"],
                "triggers_pull_request": change["triggers"]["pull_request"],
                "docs_change_triggers": any(change["docs_change_triggers"].values()),
                "code_change_triggers": all(change["code_change_triggers"].values()),
                "old_data_md5": change["old_data_md5"],
                "new_data_md5": change["new_data_md5"],
                "data_md5_read": change["data_md5_read"],
                "gate_ran": data is not None,
                "checks": [c.name for c in data.checks] if data else [],
                "roc_auc": retrained.gate_metrics["roc_auc"] if retrained else None,
                "champion_roc_auc": champ["roc_auc"],
                "needed_roc_auc": champ["roc_auc"] + noise["margin"],
                "passed_gate": data.passed if data else None,
                "reason": data.reason if data else "the pipeline did not run",
            },
        ),
        Claim(
            "production_is_separate_audited_step",
            "Production moves only in its own step, and only to the gated staging version: a "
            "version registered by hand is refused and production stays; the staged version is "
            "promoted with who, when and why in the audit log.",
            passed=bool(release["refusal"])
            and release["production_after_refusal"] == release["production_before"]
            and release["production_after"] == release["staged_version"]
            and release["staging_after"] is None
            and release["previous_tag"] == release["production_before"]
            and audit.get("alias") == "production"
            and audit.get("from_version") == release["production_before"]
            and audit.get("to_version") == release["staged_version"]
            and bool(audit.get("user"))
            and bool(audit.get("at")),
            measured={
                "by_hand_version": release["by_hand_version"],
                "refusal": release["refusal"],
                "production_before": release["production_before"],
                "production_after_refusal": release["production_after_refusal"],
                "promoted_version": release["production_after"],
                "audit_user": audit.get("user"),
                "audit_at": audit.get("at"),
                "audit_reason": audit.get("reason"),
            },
        ),
    ]
