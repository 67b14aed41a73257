"""The interview answer's claims, each decided by the numbers the lab measured.

:class:`Evidence` holds every measurement of a run; one function per claim turns it into a
:class:`~labs.common.results.Claim` (``passed`` is computed, never set by hand).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from labs.common.registry import CHALLENGER, CHAMPION, AliasMove
from labs.common.results import Claim
from labs.versioning.experiments import setting_applied
from labs.versioning.versions import METRIC, TRAIN_DATA, DataVersion, same_files


@dataclass(frozen=True)
class Evidence:
    """Everything one run of the lab measured, in the order of the story."""

    experiments_asked: Mapping[str, Sequence[str]]
    writers_asked: int
    v1: DataVersion
    v2: DataVersion
    roundtrip: dict[str, Any]  # the teammate's dvc pull
    reproduced: dict[str, Any]  # the teammate's dvc repro --force
    numbers: dict[str, str]  # data version label → registry version
    lineage: list[dict[str, Any]]  # v2's tags followed back, then v1's
    experiments: dict[str, Any]
    aliases: dict[str, Any]  # promote, challenge, roll back, refuse
    concurrent: dict[str, Any]

    @property
    def moves(self) -> list[AliasMove]:
        return self.aliases["moves"]


def make_claims(e: Evidence) -> list[Claim]:
    """Every claim, in the order the README lists them."""
    return [
        data_versions_distinct(e),
        data_restored_identical(e),
        metric_reproduced_exactly(e),
        remote_roundtrip_identical(e),
        experiments_tracked(e),
        lineage_complete(e),
        rollback_restores_predictions(e),
        rollback_refused_without_previous(e),
        alias_moves_audited(e),
        concurrent_registrations_safe(e),
    ]


def data_versions_distinct(e: Evidence) -> Claim:
    return Claim(
        "data_versions_distinct",
        "New data is a new version: v2's bytes and metrics differ from v1's, and "
        "`dvc metrics diff` shows the change.",
        passed=e.v1.md5[TRAIN_DATA] != e.v2.md5[TRAIN_DATA] and e.v1.metrics != e.v2.metrics,
        measured={
            "data_md5_v1": e.v1.md5[TRAIN_DATA],
            "data_md5_v2": e.v2.md5[TRAIN_DATA],
            "rows_v1": e.v1.rows,
            "rows_v2": e.v2.rows,
            f"{METRIC}_v1": e.v1.metrics[METRIC],
            f"{METRIC}_v2": e.v2.metrics[METRIC],
            "accuracy_v1": e.v1.metrics["accuracy"],
            "accuracy_v2": e.v2.metrics["accuracy"],
        },
    )


def data_restored_identical(e: Evidence) -> Claim:
    restore, v1 = e.lineage[-1], e.v1  # v1's tags were followed last: "switch back to v1"
    files = len(v1.md5)
    after_git = same_files(restore["after_git_checkout"], v1.md5)
    after_dvc = same_files(restore["after_dvc_checkout"], v1.md5)
    return Claim(
        "data_restored_identical",
        "`git checkout v1` alone leaves v2's data in place; `dvc checkout` then restores "
        "every v1 output byte for byte (same md5).",
        passed=after_dvc == files and after_git < files,
        measured={
            "files": files,
            "identical_after_git_checkout_only": after_git,
            "identical_after_dvc_checkout": after_dvc,
            "data_md5_v1": v1.md5[TRAIN_DATA],
            "data_md5_restored": restore["after_dvc_checkout"][TRAIN_DATA],
            "dvc_checkout_s": restore["dvc_checkout_s"],
        },
    )


def metric_reproduced_exactly(e: Evidence) -> Claim:
    r, v1 = e.reproduced, e.v1
    return Claim(
        "metric_reproduced_exactly",
        "A teammate's clone at v1 (data pulled from the remote) runs `dvc repro --force`: "
        "retraining and re-evaluating give exactly v1's metrics, model file and dvc.lock.",
        passed=r["metrics"] == v1.metrics
        and r["model_sha256"] == v1.model_sha256
        and r["lock_unchanged"],
        measured={
            f"{METRIC}_v1": v1.metrics[METRIC],
            f"{METRIC}_reproduced": r["metrics"][METRIC],
            f"{METRIC}_v2": e.v2.metrics[METRIC],
            "metrics_identical": r["metrics"] == v1.metrics,
            "model_identical": r["model_sha256"] == v1.model_sha256,
            "dvc_lock_unchanged": r["lock_unchanged"],
            "seconds": r["seconds"],
        },
    )


def remote_roundtrip_identical(e: Evidence) -> Claim:
    pulled = e.roundtrip
    # A real round trip starts from nothing: no cache and no v1 bytes in the fresh clone.
    from_nothing = pulled["cache_files_before"] == 0 and pulled["identical_before"] == 0
    return Claim(
        "remote_roundtrip_identical",
        "`dvc push` to a local remote, then `dvc pull` into a teammate's fresh clone with an "
        "empty cache, restores every v1 output byte for byte.",
        passed=from_nothing and pulled["identical_after"] == pulled["files"],
        measured=dict(pulled),
    )


def experiments_tracked(e: Evidence) -> Claim:
    found = e.experiments
    rows = {r["name"]: r for r in found["rows"]}
    applied = {
        name: name in rows and all(setting_applied(rows[name]["params"], o) for o in overrides)
        for name, overrides in e.experiments_asked.items()
    }
    return Claim(
        "experiments_tracked",
        "`dvc exp run -S` records each hyperparameter setting with its params and metrics "
        "next to the baseline, as hidden git refs rather than commits on a branch.",
        passed=all(applied.values())
        and all(METRIC in rows[n]["metrics"] for n in e.experiments_asked if n in rows)
        and found["head_unchanged"]
        and found["commits_unchanged"]
        and found["exp_refs"] == len(e.experiments_asked),
        measured={
            **{
                f"{metric}_{n}": rows[n]["metrics"].get(metric)
                for n in ("baseline", *e.experiments_asked)
                if n in rows
                for metric in (METRIC, "accuracy")
            },
            "settings_applied": sum(applied.values()),
            "settings": len(e.experiments_asked),
            "branch_commits_unchanged": found["commits_unchanged"],
            "exp_refs": found["exp_refs"],
            "seconds": found["seconds"],
        },
    )


def lineage_complete(e: Evidence) -> Claim:
    checked = e.lineage
    missing = sum(len(item["missing_tags"]) for item in checked)
    # Per check, how many versions passed it: each must be every version checked.
    counts = {
        check: sum(bool(item[check]) for item in checked)
        for check in ("data_matches", "model_matches", "lock_pins_data")
    }
    return Claim(
        "lineage_complete",
        "Every registered version carries its git commit, data md5 and model sha256; "
        "checking those out restores exactly that data and model file.",
        passed=missing == 0 and all(n == len(checked) for n in counts.values()),
        measured={"versions_checked": len(checked), "tags_missing": missing, **counts},
    )


def rollback_restores_predictions(e: Evidence) -> Claim:
    a, v1_num, v2_num = e.aliases, e.numbers["v1"], e.numbers["v2"]
    return Claim(
        "rollback_restores_predictions",
        "Rolling `champion` back to the previous version makes `models:/…@champion` serve "
        "the old predictions exactly.",
        passed=a["champion_after"] == v1_num
        and a["max_diff_promoted"] > 0
        and a["max_diff_rolled_back"] == 0.0,
        measured={
            "champion_before": v1_num,
            "champion_promoted": v2_num,
            "champion_after_rollback": a["champion_after"],
            "max_prediction_diff_promoted": a["max_diff_promoted"],
            "max_prediction_diff_rolled_back": a["max_diff_rolled_back"],
            "rows": a["rows"],
        },
    )


def rollback_refused_without_previous(e: Evidence) -> Claim:
    a = e.aliases
    return Claim(
        "rollback_refused_without_previous",
        "Rolling back past the first champion is refused with a clear error; the alias and "
        "the audit log stay as they were.",
        passed=bool(a["refusal"])
        and a["champion_after_refusal"] == e.numbers["v1"]
        and a["moves_after_refusal"] == len(e.moves),
        measured={
            "refused": bool(a["refusal"]),
            "champion_after_refusal": a["champion_after_refusal"],
            "audit_lines_added": a["moves_after_refusal"] - len(e.moves),
            "error": a["refusal"],
        },
    )


def alias_moves_audited(e: Evidence) -> Claim:
    moves, v1_num, v2_num = e.moves, e.numbers["v1"], e.numbers["v2"]
    champion = [(m.action, m.to_version) for m in moves if m.alias == CHAMPION]
    challenger = [(m.action, m.to_version) for m in moves if m.alias == CHALLENGER]
    return Claim(
        "alias_moves_audited",
        "MLflow keeps no alias history, so every move is in the audit log: champion → v1, "
        "→ v2, rolled back → v1; the challenger set, then retired on promotion.",
        passed=champion == [("promote", v1_num), ("promote", v2_num), ("rollback", v1_num)]
        and challenger == [("set", v2_num), ("retire", None)]
        and e.aliases["champion_after"] == champion[-1][1],
        measured={
            "moves_logged": len(moves),
            "champion_moves": len(champion),
            "challenger_moves": len(challenger),
            "last_move": f"{moves[-1].action} v{moves[-1].from_version} → v{moves[-1].to_version}"
            if moves
            else None,
        },
    )


def concurrent_registrations_safe(e: Evidence) -> Claim:
    c, n = e.concurrent, e.writers_asked
    return Claim(
        "concurrent_registrations_safe",
        f"{n} processes with different models, and one more with the first one's bytes, "
        "register the same model name at the same moment (their registration windows "
        "overlap): each model gets its own version and serves it, the two with the same bytes "
        "share one version (created once, found by the other: no duplicate), and nothing is "
        "overwritten.",
        passed=c["overlapped"]
        and c["distinct"]
        and c["twin_same_version"]
        and c["pair_created"] == 1
        and c["count_after"] - c["count_before"] == n == c["created"]
        and all(c["own_model"])
        and c["same_bytes_same_version"]
        and c["count_after_again"] == c["count_after"]
        and c["champion_unchanged"],
        measured={
            "processes": c["processes"],
            "versions": [int(v) for v in c["versions"]],
            "new_versions": c["count_after"] - c["count_before"],
            "each_serves_its_model": sum(c["own_model"]),
            "twin_got_first_version": c["twin_same_version"],
            "versions_created_for_the_twin_pair": c["pair_created"],
            "same_bytes_same_version": c["same_bytes_same_version"],
            "overlapped": c["overlapped"],
            "overlap_ms": c["overlap_ms"],
            "start_spread_ms": c["start_spread_ms"],
            "locked_retries": c["retries"],
        },
    )
