"""The model gate: absolute thresholds, a margin over the champion set from seed noise, and a
check that the offline score survives a time-split holdout — decided by MLflow's own
``MetricThreshold`` and ``mlflow.validate_evaluation_results``.

Why not ``mlflow.models.evaluate`` as well: it computes ROC-AUC only for a *logged* model
(a plain callable gets labels, not probabilities), then loads that model through MLflow's own
loader — not the project's allowlisted skops loader — and draws five plots per call (~10 s a
model here, ``benchmarks/bench_cicd.py``). The gate needs two numbers per model. So we compute
the metrics ourselves (``labs.common.model.quality_metrics``) and hand them to MLflow's
validation as ``EvaluationResult`` objects: the thresholds and their failure messages are
MLflow's, the cost is microseconds.
"""

from __future__ import annotations

import statistics
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from labs.common.registry import RegistryError, alias_version, promote, set_alias

STAGING = "staging"
PRODUCTION = "production"
GATE_TAG = "gate"  # "passed" on a version the gate let through (set before the staging alias)


@dataclass(frozen=True)
class GateThresholds:
    """What a candidate must reach: absolute floors, the margin over the champion, the gap."""

    min_roc_auc: float
    min_accuracy: float
    max_offline_gap: float
    margin: float  # ROC-AUC a candidate must gain over the champion (noise_sigmas × σ)

    def __post_init__(self) -> None:
        if self.margin <= 0:
            raise ValueError(f"the gate's margin must be > 0, got {self.margin!r}")


@dataclass(frozen=True)
class Check:
    """One line of the gate: ``metric`` = ``value`` against ``threshold``."""

    name: str
    metric: str
    value: float
    threshold: float
    passed: bool
    message: str  # names metric, value and threshold
    mlflow_message: str = ""  # MLflow's own wording of a failure (ModelValidationFailedException)


@dataclass(frozen=True)
class GateDecision:
    """The gate's verdict on one candidate; ``reason`` is one readable line."""

    candidate: str
    checks: tuple[Check, ...]
    metrics: Mapping[str, float] = field(default_factory=dict)

    @property
    def passed(self) -> bool:
        return all(c.passed for c in self.checks)

    @property
    def failed(self) -> list[Check]:
        return [c for c in self.checks if not c.passed]

    @property
    def reason(self) -> str:
        if self.passed:
            return "passed: " + "; ".join(c.message for c in self.checks)
        return "failed: " + "; ".join(c.message for c in self.failed)

    def as_dict(self) -> dict[str, Any]:
        return {
            "candidate": self.candidate,
            "passed": self.passed,
            "reason": self.reason,
            "metrics": dict(self.metrics),
            "checks": [c.__dict__ for c in self.checks],
        }


def noise_margin(seed_scores: Sequence[float], sigmas: float) -> tuple[float, float]:
    """σ of a metric over reseeded retrains (sample SD) and the margin ``sigmas × σ``."""
    if len(seed_scores) < 3:
        raise ValueError(f"seed noise needs at least 3 seeds, got {len(seed_scores)}")
    sigma = statistics.stdev(seed_scores)
    return sigma, sigmas * sigma


def run_gate(
    candidate: str,
    metrics: Mapping[str, float],
    champion: Mapping[str, float] | None,
    thresholds: GateThresholds,
) -> GateDecision:
    """Decide on ``candidate`` from its holdout ``metrics`` (``roc_auc``, ``accuracy``,
    ``offline_holdout_gap``) and the champion's; no champion → the absolute checks only.

    Each check is one ``MetricThreshold`` validated by ``mlflow.validate_evaluation_results``
    on its own, so the decision lists every check with its own verdict and MLflow's message.
    """
    from mlflow.models import MetricThreshold

    t = thresholds
    checks = [
        _check(
            "roc_auc_floor",
            "roc_auc",
            MetricThreshold(threshold=float(t.min_roc_auc), greater_is_better=True),
            metrics,
            None,
            float(t.min_roc_auc),
        ),
        _check(
            "accuracy_floor",
            "accuracy",
            MetricThreshold(threshold=float(t.min_accuracy), greater_is_better=True),
            metrics,
            None,
            float(t.min_accuracy),
        ),
    ]
    if champion is not None:
        checks.append(
            _check(
                "beats_champion",
                "roc_auc",
                MetricThreshold(min_absolute_change=float(t.margin), greater_is_better=True),
                metrics,
                champion,
                float(champion["roc_auc"]) + float(t.margin),
            )
        )
    checks.append(
        _check(
            "offline_matches_holdout",
            "offline_holdout_gap",
            MetricThreshold(threshold=float(t.max_offline_gap), greater_is_better=False),
            metrics,
            None,
            float(t.max_offline_gap),
        )
    )
    return GateDecision(candidate, tuple(checks), dict(metrics))


def _check(
    name: str,
    metric: str,
    threshold: Any,
    metrics: Mapping[str, float],
    baseline: Mapping[str, float] | None,
    bound: float,
) -> Check:
    import mlflow
    from mlflow.exceptions import MlflowException
    from mlflow.models import EvaluationResult

    value = float(metrics[metric])
    candidate = EvaluationResult(metrics={metric: value}, artifacts={}, run_id="")
    base = None
    if baseline is not None:
        base = EvaluationResult(metrics={metric: float(baseline[metric])}, artifacts={}, run_id="")
    relation = "≤" if metric == "offline_holdout_gap" else "≥"
    where = (
        f" (champion {float(baseline[metric]):.4f} + margin {bound - float(baseline[metric]):.4f})"
        if baseline is not None
        else ""
    )
    try:
        mlflow.validate_evaluation_results(
            validation_thresholds={metric: threshold},
            candidate_result=candidate,
            baseline_result=base,
        )
    except MlflowException as err:  # ModelValidationFailedException: MLflow's own words
        detail = " ".join(str(err).split())
        return Check(
            name,
            metric,
            value,
            bound,
            False,
            f"{name}: {metric} = {value:.4f}, threshold {relation} {bound:.4f}{where}",
            detail,
        )
    return Check(
        name, metric, value, bound, True, f"{name}: {metric} = {value:.4f} {relation} {bound:.4f}"
    )


# --- release: staging is the gate's, production a separate, audited step -------------------


class NotStagedError(RegistryError):
    """Only the version the gate put at ``staging`` may go to production."""


def stage_version(
    client: Any, name: str, version: str, decision: GateDecision, *, audit_log: Any
) -> None:
    """Point ``staging`` at a version the gate passed (the gate's verdict recorded first)."""
    if not decision.passed:
        raise NotStagedError(f"{name} v{version} did not pass the gate: {decision.reason}")
    client.set_model_version_tag(name, version, GATE_TAG, "passed")
    for key, value in decision.metrics.items():
        client.set_model_version_tag(name, version, f"gate.{key}", f"{float(value):.6f}")
    set_alias(client, name, STAGING, version, reason=decision.reason[:300], audit_log=audit_log)


def promote_to_production(
    client: Any, name: str, version: str | int, *, reason: str, audit_log: Any
) -> Any:
    """Move ``production`` to ``version`` — only if it is the gated ``staging`` version.

    Refused (:class:`NotStagedError`, registry unchanged) for any other version: one that
    was registered by hand, one the gate failed, one that was staged and replaced since.
    Audited by :func:`labs.common.registry.promote` (who, when, why, from which version);
    the promoted version leaves ``staging``.
    """
    version = str(version)
    staged = alias_version(client, name, STAGING)
    gate = client.get_model_version(name, version).tags.get(GATE_TAG)
    if staged != version or gate != "passed":
        raise NotStagedError(
            f"refused: {name} v{version} is not the gated staging version "
            f"(staging → {('v' + staged) if staged else 'nothing'}, gate tag {gate!r}); "
            f"production stays on {_at(client, name, PRODUCTION)}"
        )
    return promote(
        client,
        name,
        version,
        reason=reason,
        audit_log=audit_log,
        alias=PRODUCTION,
        retire=STAGING,
    )


def _at(client: Any, name: str, alias: str) -> str:
    version = alias_version(client, name, alias)
    return f"v{version}" if version else "no version"
