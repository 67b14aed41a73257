"""The catalogue: every seed question, the lab that answers it (if any), and its short answer.

The one place a topic's interview question and one-line answer are written. The Makefile help
(``python -m labs.common.catalogue make-help``), the README table, each lab's printout and the
evidence index read it; tests check that none of them differ.

Questions are paraphrased in English; the seed article is German and is never quoted.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from typing import Literal

Status = Literal["ready", "planned"]
Group = Literal["basics", "technical", "cloud", "behavioural"]

GROUP_TITLES: dict[Group, str] = {
    "basics": "Basics",
    "technical": "Technical",
    "cloud": "Cloud and infrastructure",
    "behavioural": "Behavioural",
}


@dataclass(frozen=True)
class Topic:
    """One seed question; ``lab`` is set when a runnable lab demonstrates the answer."""

    id: str
    question: str
    answer: str
    group: Group
    status: Status = "planned"
    lab: bool = True

    @property
    def make_target(self) -> str:
        return f"lab-{self.id}"

    @property
    def experiment(self) -> str:
        """The MLflow experiment the lab logs to."""
        return f"lab-{self.id}"


TOPICS: tuple[Topic, ...] = (
    Topic(
        "drift",
        "What is model drift, and what is concept drift? How do you tell them apart?",
        "Model (covariate) drift: the inputs change, P(x); feature tests on the inputs catch it. "
        "Concept drift: the input→label relationship changes, P(y|x); inputs look the same, so "
        "only quality measured on fresh labels catches it. Monitor both, and count false alarms.",
        "basics",
        "ready",
    ),
    Topic(
        "testing",
        "Which tests should a model pass before it goes to production?",
        "Unit tests for features and preprocessing, integration tests of the served model, "
        "performance gates on quality, latency and resources, stress tests under load, an A/B "
        "test against the current model, and robustness tests on odd or corrupted inputs.",
        "basics",
        "ready",
    ),
    Topic(
        "versioning",
        "Why does version control matter in MLOps?",
        "A model is code plus data plus parameters: version all three (git, DVC, a model "
        "registry) and any model can be traced to what made it, rebuilt exactly, compared and "
        "rolled back in seconds by moving an alias.",
        "basics",
        "ready",
    ),
    Topic(
        "packaging",
        "How do you package a model for production?",
        "Serialize it in a safe, portable format (skops or ONNX rather than pickle), wrap it as "
        "an MLflow model or a REST service, and ship it in a container or a serverless handler; "
        "check that every package predicts the same as the trained model.",
        "basics",
        "ready",
    ),
    Topic(
        "monitoring",
        "Why monitor a model in production, which metrics do you watch, and how?",
        "Models decay silently. Watch service health (latency, errors, throughput), input and "
        "prediction drift (no labels needed) and quality once delayed labels arrive, with "
        "thresholds that alert early and rarely cry wolf.",
        "basics",
        "ready",
    ),
    Topic(
        "deployment",
        "What is the difference between canary and blue-green deployments?",
        "Canary sends a small, growing share of traffic to the new model and rolls back on bad "
        "metrics, limiting exposure; blue-green runs two full environments and switches all "
        "traffic at once, making rollback instant. Shadow traffic tests without exposure.",
        "basics",
        "ready",
    ),
    Topic(
        "retraining",
        "How do you automate retraining, and decide whether to deploy the new model?",
        "A scheduled or triggered pipeline (drift, quality drop, new data) validates the data, "
        "trains a challenger, compares it with the champion on the same holdout, and promotes "
        "it only if it is better by a margin; every move is logged and reversible.",
        "technical",
        "ready",
    ),
    Topic(
        "cicd",
        "How would you set up CI/CD for machine learning models?",
        "A pipeline triggered by code or data changes: lint and unit tests, data validation, "
        "reproducible training, a model gate that blocks a worse model, registration to staging "
        "and an approved promotion to production, then monitoring.",
        "technical",
        "ready",
    ),
    Topic(
        "data_quality",
        "What are good practices for data management in MLOps?",
        "Validate every batch against a data contract, quarantine what fails without losing "
        "it, version data with the code, and monitor quality over time: an upstream format "
        "change otherwise degrades the model silently.",
        "technical",
        "ready",
    ),
    Topic(
        "features",
        "How do you handle feature engineering and preprocessing in an MLOps pipeline?",
        "Put preprocessing inside the model pipeline, fitted on training data only, and serve "
        "the same code: training–serving skew disappears and features stay versioned with the "
        "model.",
        "technical",
        "ready",
    ),
    Topic(
        "reproducibility",
        "How do you make machine learning experiments reproducible?",
        "Pin seeds, lock dependencies, version data and parameters, and run training as a "
        "pipeline with recorded inputs: the same commit rebuilds the same model and metrics.",
        "technical",
        "ready",
    ),
    Topic(
        "explainability",
        "Which explainability tools do you use, and why does explainability matter?",
        "SHAP and permutation importance show which inputs drive a prediction, globally and per "
        "case; they build trust, satisfy regulators and expose leaks and bias — if checked "
        "against what is known to be true.",
        "technical",
        "ready",
    ),
    Topic(
        "security",
        "How do you keep data secure and compliant when you deploy models?",
        "Never load untrusted model files, pseudonymise personal data, encrypt and control "
        "access to data, models and the API, and keep an audit trail of who changed what.",
        "cloud",
        "ready",
    ),
    Topic(
        "scaling",
        "How do you scale models for more users, and when edge rather than cloud?",
        "Batch requests, replicate stateless servers behind a load balancer, use faster runtimes "
        "(ONNX, quantisation); run on the edge when latency, privacy or connectivity demand it, "
        "in the cloud when models are large or change often.",
        "cloud",
        "ready",
    ),
    Topic(
        "availability",
        "How do you keep models in production available and fault tolerant?",
        "Several replicas behind a proxy with health checks, retries and failover, graceful "
        "shutdown and rolling updates: one replica failing costs no requests.",
        "cloud",
        "ready",
    ),
    Topic(
        "what_is_mlops",
        "What is MLOps, and why does it matter?",
        "Engineering practice that takes models from experiment to production and keeps them "
        "healthy there: automated, versioned, tested, monitored pipelines that close the gap "
        "between data science and operations.",
        "basics",
        lab=False,
    ),
    Topic(
        "mlops_vs_devops",
        "How does MLOps differ from DevOps?",
        "Both automate build, test and release; MLOps adds what software lacks: data and models "
        "as versioned artefacts, data validation, experiments, model quality gates and "
        "monitoring for drift after release.",
        "basics",
        lab=False,
    ),
    Topic(
        "cloud",
        "How do you deploy and manage models in the cloud, and control cost?",
        "Use managed registries, serving and orchestration, autoscale on load, right-size and "
        "use spot capacity for training, and track cost per model; the same pipelines run "
        "locally by swapping configuration.",
        "cloud",
        lab=False,
    ),
    Topic(
        "serverless",
        "What are the benefits and challenges of serverless model serving?",
        "No servers to run and pay-per-use scaling, at the price of cold starts, size and "
        "memory limits and little control over hardware: good for light, spiky workloads.",
        "cloud",
        lab=False,
    ),
    Topic(
        "deployment_problems",
        "What problems typically show up when a model is deployed?",
        "Quality decays as data and relationships drift; production data differs in format or "
        "quality from training data; load and latency outgrow the set-up; integration breaks on "
        "formats and interfaces; and data and models need protecting. Each has a measured "
        "answer: monitoring, validation gates, scaling, contracts, access control.",
        "basics",
        lab=False,
    ),
    Topic(
        "preparation",
        "How do you prepare for an MLOps interview, and what makes an answer stand out?",
        "Know the lifecycle end to end and the common tools, read up on the company's stack, "
        "bring two or three stories with numbers, practise writing pipeline code, and never "
        "stop at the algorithm: talk about operating the model — monitoring, rollback, cost.",
        "behavioural",
        lab=False,
    ),
    Topic(
        "behavioural",
        "How did you solve a problem with a model in production, and work with other teams?",
        "Situation, action, result: how the problem was detected, the measurements that "
        "located it, the fix and its verification, and what changed so it cannot recur.",
        "behavioural",
        lab=False,
    ),
)


class UnknownTopicError(KeyError):
    """No catalogue entry has this id."""

    def __str__(self) -> str:
        return str(self.args[0])


def labs() -> list[Topic]:
    """The topics that are (or will be) a runnable lab, in catalogue order."""
    return [t for t in TOPICS if t.lab]


def ready_labs() -> list[Topic]:
    return [t for t in labs() if t.status == "ready"]


def topic(topic_id: str) -> Topic:
    """The catalogue entry ``topic_id``; an error lists the valid ids."""
    for t in TOPICS:
        if t.id == topic_id:
            return t
    valid = ", ".join(t.id for t in labs())
    raise UnknownTopicError(f"no lab {topic_id!r}; labs: {valid}")


def make_help_lines() -> list[str]:
    """One line per lab for ``make help``: target, status, question."""
    lines = []
    for t in labs():
        mark = "" if t.status == "ready" else " (planned)"
        lines.append(f"  {t.make_target:<22} {t.question}{mark}")
    return lines


def readme_table() -> str:
    """The README's catalogue table (a test keeps the README equal to it)."""
    rows = ["| lab | interview question | status |", "|---|---|---|"]
    for t in labs():
        status = f"ready — `make {t.make_target}`" if t.status == "ready" else "planned"
        rows.append(f"| `{t.id}` | {t.question} | {status} |")
    return "\n".join(rows)


def _main(argv: list[str]) -> int:
    """``make-help`` | ``ready`` | ``check TOPIC`` (exit 0 ready, 3 planned, 2 unknown)."""
    command = argv[0] if argv else "make-help"
    if command == "make-help":
        print("\n".join(make_help_lines()))
        return 0
    if command == "ready":
        print(" ".join(t.id for t in ready_labs()))
        return 0
    if command == "check" and len(argv) == 2:
        try:
            t = topic(argv[1])
        except UnknownTopicError as err:
            print(f"make: {err}", file=sys.stderr)
            return 2
        if not t.lab:
            print(f"make: {t.id!r} is a seed question with no lab: {t.question}", file=sys.stderr)
            return 2
        if t.status != "ready":
            print(
                f"make: lab {t.id!r} is planned, not built yet — it will answer: {t.question}",
                file=sys.stderr,
            )
            return 3
        return 0
    usage = "usage: python -m labs.common.catalogue [make-help | ready | check TOPIC]"
    print(usage, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(_main(sys.argv[1:]))
