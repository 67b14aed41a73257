"""The data_quality lab's claims, each decided by the numbers the run measured."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from labs.common.results import Claim
from labs.data_quality.steps import CHARGES, flip_rate

V1, V2, V3 = "v1-before-incident", "v2-incident", "v3-hotfix-cents-to-euros"

if TYPE_CHECKING:
    from labs.data_quality.params import DataQualityParams


def make_claims(params: DataQualityParams, **m: Any) -> list[Claim]:
    """The interview answer's claims, each decided by the measurements in ``m``."""
    p_before, verdicts = m["p_before"], m["verdicts"]
    flips = {
        name: flip_rate(p_before, np.asarray(v["proba"]))
        for name, v in verdicts.items()
        if name.startswith("x") and v["accepted"]
    }
    factor_names = [f"x{f:g}" for f in params.unit_factors]
    clean, dirty, dirty_split = m["clean_split"], m["dirty"], m["dirty_split"]
    quarantined_rows = set(dirty_split.quarantined.index)
    planted_rows = set(dirty.planted)
    incident, fixed = m["incident_split"], m["fixed_split"]
    small = [n for n in factor_names if n != f"x{params.incident_factor:g}"]
    stream: pd.DataFrame = m["stream"]
    phase = stream.groupby("phase")
    before_acc = float(phase.get_group("before")["accuracy_ungated"].mean())
    incident_acc = float(phase.get_group("incident")["accuracy_ungated"].mean())
    hotfix_acc = float(phase.get_group("hotfix")["accuracy_served"].mean())
    hotfix_days = phase.get_group("hotfix")
    hotfix_factor = float(m["hotfix_found"]["unit_factor"])
    # The fixed batch's valid rows: all of them, unless the hotfix left rows the gate refuses.
    whole = len(m["p_fixed"]) == len(p_before)
    max_delta = float(np.max(np.abs(p_before - m["p_fixed"]))) if whole else float("inf")
    fixed_flips = flip_rate(p_before, m["p_fixed"]) if whole else float("nan")
    entries = {e["name"]: e for e in m["entries"]}
    mate = m["teammate"]
    md5_found = mate["md5_found"]
    drift = m["drift"]
    return [
        Claim(
            "clean_batch_passes",
            "A clean batch passes the contract whole: nothing quarantined, not refused.",
            passed=len(clean.quarantined) == 0 and not clean.refusal(params.max_bad_share),
            measured={
                "rows": clean.rows,
                "quarantined_rows": len(clean.quarantined),
                "batch_reasons": list(clean.batch_reasons),
            },
        ),
        Claim(
            "lazy_reports_every_failure",
            "Lazy validation reports every kind of failure of a dirty batch in one pass.",
            passed=set(m["one_pass"]) >= set(dirty.planted.values()),
            measured={
                "planted_kinds": sorted(set(dirty.planted.values())),
                "reported_in_one_pass": sorted(m["one_pass"]),
            },
        ),
        Claim(
            "gate_loses_nothing",
            "The gate splits the batch row for row: valid + quarantined = input, every planted "
            "bad row quarantined with its reason, no clean row touched.",
            passed=m["accounting"]["missing_rows"] == 0
            and m["accounting"]["duplicated_rows"] == 0
            and m["accounting"]["rows_changed"] == 0
            and m["accounting"]["valid_rows"] + m["accounting"]["quarantined_rows"]
            == m["accounting"]["input_rows"]
            and quarantined_rows == planted_rows,
            measured={
                **m["accounting"],
                "planted_bad_rows": len(planted_rows),
                "planted_rows_caught": len(planted_rows & quarantined_rows),
                "clean_rows_quarantined": len(quarantined_rows - planted_rows),
                "bad_share": dirty_split.bad_share,
                "by_reason": dirty_split.reason_counts(),
            },
        ),
        Claim(
            "gate_refuses_above_threshold",
            f"A batch with more than {params.max_bad_share:.0%} bad rows is refused whole; "
            "one below it is accepted with its bad rows quarantined.",
            passed=bool(m["bad_split"].refusal(params.max_bad_share))
            and not dirty_split.refusal(params.max_bad_share),
            measured={
                "max_bad_share": params.max_bad_share,
                "accepted_batch_bad_share": dirty_split.bad_share,
                "refused_batch_bad_share": m["bad_split"].bad_share,
            },
        ),
        Claim(
            "signature_accepts_unit_change",
            "The MLflow signature accepts every unit change (it checks types, not meaning) and "
            f"predictions flip for ≥ {params.min_flip_rate:.0%} of customers; it rejects only "
            "a renamed column.",
            passed=all(verdicts[n]["accepted"] for n in (*factor_names, "incident"))
            and not verdicts["renamed_column"]["accepted"]
            and all(flips[n] >= params.min_flip_rate for n in factor_names),
            measured={f"flip_rate_{n}": flips.get(n, float("nan")) for n in factor_names}
            | {
                "incident_accepted": verdicts["incident"]["accepted"],
                "renamed_column_accepted": verdicts["renamed_column"]["accepted"],
            },
        ),
        Claim(
            "contract_refuses_the_incident",
            "The contract refuses the cents batch at the gate (range and category checks) and "
            "the drift report points at exactly the broken columns.",
            passed=bool(incident.refusal(params.max_bad_share))
            and incident.bad_share == 1.0
            and sorted(drift["incident"].drifted_features)
            == sorted([CHARGES, *params.renamed_categories]),
            measured={
                "bad_share": incident.bad_share,
                "by_reason": incident.reason_counts(),
                "drifted_features": drift["incident"].drifted_features,
            },
        ),
        Claim(
            "distribution_check_catches_small_factors",
            "×2 and ×3 pass the coarse range check, yet the batch-median expectation refuses "
            "them and the drift test flags only monthly_charges.",
            passed=bool(small)
            and all(
                len(m["coarse"][n].quarantined) == 0
                and not m["coarse"][n].refusal(params.max_bad_share)
                and m["with_medians"][n].refusal(params.max_bad_share)
                and drift[n].drifted_features == [CHARGES]
                for n in small
            ),
            measured={
                f"range_check_rows_failed_{n}": len(m["coarse"][n].quarantined) for n in small
            }
            | {f"median_check_refused_{n}": bool(m["with_medians"][n].batch_reasons) for n in small}
            | {f"ks_p_value_{n}": drift[n][CHARGES].p_value for n in small},
        ),
        Claim(
            "hotfix_restores_predictions",
            "The versioned conversion, which estimates the unit factor from the batch against "
            "the training data (it is not told the factor), restores every prediction, and the "
            "daily accuracy recovers to its pre-incident level.",
            passed=hotfix_factor == params.incident_factor
            and len(fixed.quarantined) == 0
            and not fixed.refusal(params.max_bad_share)
            and fixed_flips == 0.0
            and max_delta < 1e-9
            and before_acc - incident_acc > params.recovery_tolerance
            and abs(hotfix_acc - before_acc) < params.recovery_tolerance
            and bool(
                phase.get_group("incident")
                .query(f"day < {params.hotfix_day}")["gate_refused"]
                .all()
            ),  # fmt: skip
            measured={
                "unit_factor_planted": params.incident_factor,
                "unit_factor_estimated": hotfix_factor,
                "unit_factor_estimated_daily": sorted(set(hotfix_days["unit_factor_found"])),
                "flip_rate_after_fix": fixed_flips,
                "max_abs_delta_p": max_delta,
                "fixed_rows_quarantined": len(fixed.quarantined),
                "accuracy_before": before_acc,
                "accuracy_incident_ungated": incident_acc,
                "accuracy_after_hotfix": hotfix_acc,
                "incident_days_refused": int(stream["gate_refused"].sum()),
            },
        ),
        Claim(
            "versioned_data_reproduces_metric",
            "Each data version is recorded by md5 in a shared store; a teammate's separate "
            "process checks out the pre-incident version (md5 verified) and reproduces the "
            "pre-incident ROC-AUC exactly, and finds the hotfixed batch byte-identical to it.",
            passed=bool(mate["found"] and mate["md5_verified"])
            and mate.get("roc_auc_checked_out") == m["metric_before"]
            and mate.get("roc_auc_recorded") == m["metric_before"]
            and md5_found.get(V3) is not None
            and md5_found.get(V3) == md5_found.get(V1)
            and md5_found.get(V2) not in (None, md5_found.get(V1)),
            measured={
                "roc_auc_recorded": m["metric_before"],
                "teammate_found_version": bool(mate["found"]),
                "teammate_md5_verified": bool(mate["md5_verified"]),
                "teammate_versions_found": mate["versions_found"],
                "roc_auc_checked_out": mate.get("roc_auc_checked_out"),
                **{f"md5_{name}": e["md5"] for name, e in entries.items()},
                **{f"md5_found_{name}": md5 for name, md5 in md5_found.items()},
            },
        ),
    ]
