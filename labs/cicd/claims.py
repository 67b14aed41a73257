"""The cicd lab's claims, each decided by the numbers the run measured."""

from __future__ import annotations

from typing import Any

from labs.cicd.changes import Trained
from labs.cicd.gate import GATE_TAG, GateDecision
from labs.cicd.params import CicdParams
from labs.common.results import Claim

DEGRADING = ("dropped_feature", "leaky_feature", "preprocessing_bug")
LINEAGE = ("git_commit", "data_md5", "requirements_lock_sha256", "dvc_lock_sha256")


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
    trigger: dict[str, Any],
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
    data = decisions["new_data"]
    code_checks = [c.name for c in good.checks]
    audit = release["audit"] or {}
    return [
        Claim(
            "margin_from_seed_noise",
            f"The champion's recipe retrained on {noise['seeds']} fresh samples moves holdout "
            f"ROC-AUC by σ; the margin is {p.noise_sigmas:g}σ. A no-op change beats an equal "
            "model by chance about half the time without a margin, far less often with it.",
            passed=noise["sigma"] > 0
            and noise["margin"] >= 2 * noise["sigma"]
            and noise["noop_pass_rate_with_margin"] <= noise["noop_pass_rate_without_margin"] / 2,
            measured=noise,
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
            "A new data version changes only dvc.lock; the workflow runs for it (and for code, "
            "not for docs), and the same gate checks decide on the retrained model.",
            passed=trigger["changed_files"] == ["dvc.lock"]
            and all(trigger["triggers"].values())
            and all(trigger["code_change_triggers"].values())
            and not any(trigger["docs_change_triggers"].values())
            and [c.name for c in data.checks] == code_checks
            and trigger["new_data_md5"] != trigger["old_data_md5"],
            measured={
                "changed_files": trigger["changed_files"],
                "triggers_push": trigger["triggers"]["push"],
                "triggers_pull_request": trigger["triggers"]["pull_request"],
                "docs_change_triggers": any(trigger["docs_change_triggers"].values()),
                "checks": [c.name for c in data.checks],
                "roc_auc": data.metrics["roc_auc"],
                "needed_roc_auc": champ["roc_auc"] + noise["margin"],
                "passed_gate": data.passed,
                "reason": data.reason,
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
