"""What the evidence index shows beside the catalogue: which labs back each answer that is not a
lab, follow-up questions for those answers, and the two seed sections the catalogue does not
hold yet (typical deployment problems, preparing for the interview).

Questions and one-line answers of the labs live only in :mod:`labs.common.catalogue`; this
module adds the connective tissue the index needs. Paraphrased in English; the seed article is
German and never quoted.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class FollowUp:
    """A question an interviewer asks next, and the gist of a good reply."""

    question: str
    answer: str


# The order the seed article asks its questions in (topics not listed follow, catalogue order).
SEED_ORDER: tuple[str, ...] = (
    "what_is_mlops", "mlops_vs_devops", "drift", "testing", "versioning", "packaging",
    "monitoring", "deployment_problems", "deployment", "retraining", "cicd", "data_quality",
    "features", "reproducibility", "explainability", "cloud", "serverless", "security",
    "scaling", "availability", "behavioural", "preparation",
)  # fmt: skip

# For each answer that is not a lab: the labs whose measured claims back it, and why.
BACKED_BY: dict[str, tuple[tuple[str, str], ...]] = {
    "what_is_mlops": (
        ("versioning", "every model traced to its code, data and params, and rolled back"),
        ("retraining", "an automated pipeline decides whether a new model ships"),
        ("monitoring", "the model is watched after release, with alerts"),
    ),
    "mlops_vs_devops": (
        ("versioning", "data and models versioned like code"),
        ("drift", "what software never has: inputs and concepts that drift"),
        ("cicd", "a gate that blocks a worse model, not just failing code"),
    ),
    "deployment_problems": (
        ("drift", "quality decays when data or concepts drift"),
        ("data_quality", "production data that differs from training data"),
        ("scaling", "throughput and latency under load"),
        ("security", "untrusted model files and personal data"),
    ),
    "cloud": (
        ("scaling", "batching, replicas and faster runtimes before bigger machines"),
        ("availability", "replicas, health checks and failover"),
        ("retraining", "the same flow runs locally or on a work pool by configuration"),
    ),
    "serverless": (
        ("packaging", "the model packaged as a serverless handler, cold start measured"),
        ("scaling", "what a cold start and model size cost per request"),
    ),
    "behavioural": (
        ("data_quality", "the upstream unit-change incident: detected, located, fixed"),
        ("drift", "a quality drop traced to concept drift rather than to the inputs"),
        ("monitoring", "how the problem was detected in the first place"),
    ),
    "preparation": (
        ("drift", "a story with numbers you measured yourself"),
        ("retraining", "operating the model, not only training it"),
    ),
}

FOLLOW_UPS: dict[str, tuple[FollowUp, ...]] = {
    "what_is_mlops": (
        FollowUp(
            "What is the first thing you would automate in a team without MLOps?",
            "Reproducible training from versioned data and a model registry: without them no "
            "later step (gates, rollback, monitoring) can say which model is running.",
        ),
        FollowUp(
            "How do you know MLOps is paying off?",
            "Lead time from idea to production, how often a release is rolled back, time to "
            "detect and fix a degraded model — measured before and after.",
        ),
    ),
    "mlops_vs_devops": (
        FollowUp(
            "Why is a passing test suite not enough to release a model?",
            "The code can be correct while the model is worse: it needs a quality gate on a "
            "fixed holdout against the current champion, and monitoring after release.",
        ),
    ),
    "deployment_problems": (
        FollowUp(
            "Which of these problems do you guard against first?",
            "Data validation at the entrance: a bad batch is cheap to quarantine and expensive "
            "to train on or to serve predictions from.",
        ),
    ),
    "cloud": (
        FollowUp(
            "How do you keep cloud training costs under control?",
            "Right-size instances, use spot or preemptible capacity with checkpoints, stop idle "
            "resources automatically, and report cost per model and per training run.",
        ),
        FollowUp(
            "How do you avoid lock-in to one provider?",
            "Keep pipelines and models in open formats (MLflow, ONNX, containers) and make the "
            "provider a configuration, the way these labs swap a local store for a server.",
        ),
    ),
    "serverless": (
        FollowUp(
            "When would you not use serverless serving?",
            "Large models, GPU inference, steady high traffic (always-on is cheaper) or strict "
            "latency targets that a cold start would break.",
        ),
    ),
    "behavioural": (
        FollowUp(
            "What would you do differently next time?",
            "Name the missing guard (a validation rule, an alert) and show it now exists — an "
            "answer with a concrete change beats a general lesson.",
        ),
        FollowUp(
            "How did you keep the other teams informed?",
            "One owner, a shared timeline, numbers instead of opinions, and a short written "
            "follow-up with the agreed fix and who does what.",
        ),
    ),
    "preparation": (
        FollowUp(
            "What is a common mistake in MLOps interviews?",
            "Talking only about algorithms and forgetting operations; and answers without an "
            "example from real work.",
        ),
    ),
}
