"""The testing lab's counterfactuals: test suites with one broken part, each run through the
lab's own ``run()`` — its claims must catch every one.

- ``suite-never-meets-production``: the integration test scores the model in process, not over
  HTTP; the "stress" test is one user's requests (a latency benchmark); the robustness tests
  call every model on whatever arrives, without the serving schema;
- ``checks-look-elsewhere``: hypothesis draws one-customer batches only; the gate checks
  ranking (ROC-AUC, beats the baselines) and nothing about the probabilities themselves;
- ``z-test-forgets-one-arm``: the A/B z statistic's standard error counts one arm's variance.

Three counterfactuals, several broken parts each: every one is a whole run of the lab (servers,
locust), and the audit of all of them must fit in about a minute.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from labs.common.counterfactuals import Counterfactual, LabCounterfactuals
from labs.testing.gate import GateVerdict, run_gate
from labs.testing.integration import request_bodies
from labs.testing.lab import TestingParams, run
from labs.testing.robustness import raw_scorer


def integration_in_process(
    served: Any, frame: pd.DataFrame, expected: np.ndarray, batch_rows: int
) -> dict[str, Any]:
    """The broken integration test: the same batches, scored by the model in this process —
    never through the server, its schema or its loading."""
    answers = np.concatenate(
        [served.predict(frame.iloc[i : i + batch_rows]) for i in range(0, len(frame), batch_rows)]
    )
    gap = np.abs(answers - expected)
    requests = len(request_bodies(frame, batch_rows))
    return {
        "requests": requests,
        "ok_requests": requests,
        "failed_requests": 0,
        "statuses": {"200": requests},
        "rows_answered": len(frame),
        "max_abs_dp": float(gap.max()),
        "labels_differing": int(np.sum((answers >= 0.5) != (expected >= 0.5))),
        "first_error": "",
    }


def gate_on_roc_auc_only(
    name: str,
    metrics: dict[str, float],
    baselines: dict[str, dict[str, float]],
    *,
    min_roc_auc: float,
    margin: float,
    **_other_thresholds: float,
) -> GateVerdict:
    """The broken gate: ROC-AUC above its threshold and above each baseline by the margin;
    recall at the operating point and calibration are never looked at."""
    return run_gate(
        name, metrics, baselines, min_roc_auc=min_roc_auc, min_recall_at_precision=0.0,
        max_calibration_error=1.0, margin=margin,
    )  # fmt: skip


def z_one_arm_variance(
    rng: np.random.Generator, p_a: float, p_b: float, n_per_arm: int, looks: int, sims: int
) -> np.ndarray:
    """The broken z statistic: the standard error of a difference of two proportions taken
    as one proportion's, sqrt(p(1-p)/n) — the second arm's variance forgotten."""
    batch = np.diff(np.linspace(0, n_per_arm, looks + 1).round().astype(int))
    a = np.cumsum(rng.binomial(batch, p_a, size=(sims, looks)), axis=1)
    b = np.cumsum(rng.binomial(batch, p_b, size=(sims, looks)), axis=1)
    n = np.cumsum(batch)
    pooled = (a + b) / (2 * n)
    se = np.sqrt(pooled * (1 - pooled) / n)
    with np.errstate(divide="ignore", invalid="ignore"):
        z = (a / n - b / n) / se
    return np.nan_to_num(z)


COUNTERFACTUALS = LabCounterfactuals(
    "testing",
    "testing",
    TestingParams,
    run,
    (
        Counterfactual(
            "suite-never-meets-production",
            "the tests meet the model as a notebook does",
            (
                "integration_over_http",
                "stress_knee",
                "robustness_checklist",
                "every_kind_tells_them_apart",
            ),
            "The integration test scores each candidate in process instead of posting to the "
            "served model, the stress ramp holds one user, and the robustness tests call every "
            "model without the serving schema in front.",
            params={"stress_users": (1,)},
            components={"integration_test": integration_in_process, "robust_scorer": raw_scorer},
        ),
        Counterfactual(
            "checks-look-elsewhere",
            "property tests on one-customer batches, a gate on ranking only",
            (
                "unit_contract_catches_batch_statistics",
                "performance_gate",
                "every_kind_tells_them_apart",
            ),
            "The hypothesis strategy draws batches of one customer, where scaling with the "
            "batch's own statistics cannot show; the gate checks ROC-AUC against its threshold "
            "and the baselines, never recall at the operating precision or calibration.",
            params={"unit_max_batch_rows": 1},
            components={"gate_check": gate_on_roc_auc_only},
        ),
        Counterfactual(
            "z-test-forgets-one-arm",
            "the A/B z statistic forgets one arm's variance",
            ("ab_power", "ab_aa_false_positives", "ab_peeking_inflates"),
            "The standard error of the difference of two churn rates is computed as if only one "
            "arm were random: every z is √2 too large.",
            components={"z_statistics": z_one_arm_variance},
        ),
    ),
    audit_params={
        # ≥ 400 holdout rows: the calibration error of 300 varies past the gate's 0.05
        "train_rows": 1000,
        "holdout_rows": 400,
        "hypothesis_examples": 8,
        "noise_seeds": 3,
        "stress_users": (4, 16),  # 2 users queued the 60 ms defect only sometimes past 100 ms
        "stress_step_seconds": 1.0,
        "ab_simulations": 600,
        "robust_rows": 200,
    },
)
