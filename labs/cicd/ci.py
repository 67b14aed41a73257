"""The project's CI pipeline, stage by stage: ``python -m labs.cicd.ci <stage>|all``.

``make ci`` runs lint → unit → data → repro → gate → register in order, prints each stage with
its time and stops at the first failure, naming the stage and the reason. The GitHub workflow
(``.github/workflows/ml.yml``) calls the same stages one job each (``make ci-<stage>``);
``promote`` runs only there after an approval, or by hand (``make ci-promote``).

The gate is the lab's (labs/cicd/gate.py) on the project's own pipeline: the model
``dvc repro`` built (``models/churn-model.skops``), scored on ``data/prepared/holdout.csv``,
against the registered model ``cicd.ci_model_name`` at ``production`` if there is one.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

from labs.common.errors import Refusal

UNIT_TESTS = (
    "tests/common/test_data.py",
    "tests/common/test_params.py",
    "tests/common/test_catalogue.py",
    "tests/common/test_results.py",
)
ALL = ("lint", "unit", "data", "repro", "gate", "register")
MODEL = Path("models/churn-model.skops")
TRAIN, HOLDOUT = Path("data/prepared/train.csv"), Path("data/prepared/holdout.csv")
EXPERIMENT = "ci"


class StageFailed(Exception):
    """A stage's check failed; the message is the reason, one line."""


def _root() -> Path:
    from labs.common.paths import project_root

    return project_root()


def _report_dir() -> Path:
    path = _root() / "reports" / "cicd" / "ci"
    path.mkdir(parents=True, exist_ok=True)
    return path


def _command(*cmd: str, timeout_s: float = 900) -> str:
    """Run a tool from the venv in the project root; its output, or StageFailed with its tail."""
    bin_dir = Path(sys.executable).parent
    exe = bin_dir / cmd[0]
    env = {**os.environ, "PATH": f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}"}
    proc = subprocess.run(
        [str(exe) if exe.exists() else cmd[0], *cmd[1:]],
        cwd=_root(),
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout_s,
    )
    out = (proc.stdout + proc.stderr).strip()
    if proc.returncode != 0:
        tail = "\n".join(out.splitlines()[-15:])
        raise StageFailed(f"`{' '.join(cmd)}` exited {proc.returncode}:\n{tail}")
    return out


def lint() -> str:
    """ruff (lint, format), the import contracts, and the workflow file itself."""
    from labs.cicd.workflow import index_words, load_workflow, schema_check, step_problems

    _command("ruff", "check", ".")
    _command("ruff", "format", "--check", ".")
    _command("lint-imports")
    ok, out = schema_check()
    if not ok:
        raise StageFailed(f"the workflow breaks the GitHub workflow schema: {out}")
    problems = step_problems(load_workflow()) + [
        f"names a package index or URL: {w}" for w in index_words()
    ]
    if problems:
        raise StageFailed("workflow: " + "; ".join(problems))
    return "ruff, ruff format, lint-imports, workflow schema and make steps: clean"


def unit() -> str:
    """The shared core's unit tests (fast, no servers)."""
    out = _command("python", "-m", "pytest", "-n0", "-q", "-p", "no:cacheprovider", *UNIT_TESTS)
    return out.splitlines()[-1] if out else "no output"


def data() -> str:
    """The raw and prepared tables against the batch schema (pandera)."""
    import pandas as pd

    from labs.common.schema import validate_batch

    lines = []
    for path in (Path("data/raw/churn.csv"), TRAIN, HOLDOUT):
        if not (_root() / path).exists():
            raise StageFailed(f"{path} is missing: run the repro stage (dvc repro) first")
        report = validate_batch(pd.read_csv(_root() / path))
        if not report.valid:
            raise StageFailed(f"{path}: {report.rows} rows, " + "; ".join(report.reasons[:5]))
        lines.append(f"{path} ({report.rows} rows)")
    return "valid: " + ", ".join(lines)


def repro() -> str:
    """``dvc repro``; on a CI runner a committed ``dvc.lock`` that repro changes fails."""
    out = _command("dvc", "repro")
    ran = [line for line in out.splitlines() if line.startswith("Running stage")]
    status = _command("dvc", "status")
    if "up to date" not in status and status.strip():
        raise StageFailed(f"dvc status after repro is not clean: {status}")
    if os.environ.get("CI"):
        diff = subprocess.run(
            ["git", "diff", "--quiet", "--", "dvc.lock"], cwd=_root(), check=False
        ).returncode
        if diff:
            raise StageFailed("dvc repro changed dvc.lock: commit the updated dvc.lock")
    return f"{len(ran)} stages ran" + (f" ({', '.join(ran)})" if ran else " (pipeline up to date)")


def gate() -> str:
    """The model gate on the pipeline's model; writes reports/cicd/ci/gate.json."""
    import mlflow
    import pandas as pd

    from labs.cicd.gate import PRODUCTION, STAGING, GateThresholds, noise_margin, run_gate
    from labs.cicd.params import CicdParams
    from labs.common.model import TrainParams, build_model, evaluate_model, split_xy
    from labs.common.params import params_for
    from labs.common.registry import SHA_TAG, alias_version
    from labs.common.tracking import configure_tracking, load_model_file, model_sha256

    p = params_for(CicdParams, "cicd")
    root = _root()
    model = load_model_file(root / MODEL)
    train, holdout = pd.read_csv(root / TRAIN), pd.read_csv(root / HOLDOUT)
    held, seen = evaluate_model(model, holdout), evaluate_model(model, train)
    metrics = {
        "roc_auc": held["roc_auc"],
        "accuracy": held["accuracy"],
        "offline_roc_auc": seen["roc_auc"],
        "offline_holdout_gap": seen["roc_auc"] - held["roc_auc"],
    }
    # Seed noise of this recipe: the same params on bootstrap resamples of the training rows.
    recipe = params_for(TrainParams, "train")
    scores = []
    for s in range(p.noise_seeds):
        sample = train.sample(frac=1.0, replace=True, random_state=p.seed + s)
        x, y = split_xy(sample)
        fitted = build_model(recipe).fit(x, y)
        scores.append(evaluate_model(fitted, holdout)["roc_auc"])
    sigma, margin = noise_margin(scores, p.noise_sigmas)
    thresholds = GateThresholds(p.min_roc_auc, p.min_accuracy, p.max_offline_gap, margin)

    configure_tracking()
    client = mlflow.MlflowClient()
    sha = model_sha256(model)
    champion, unchanged = None, None
    try:
        aliases = {a: alias_version(client, p.ci_model_name, a) for a in (PRODUCTION, STAGING)}
    except mlflow.exceptions.MlflowException:  # not registered yet: floors only
        aliases = {}
    for alias, version in aliases.items():
        if version and client.get_model_version(p.ci_model_name, version).tags.get(SHA_TAG) == sha:
            unchanged = f"the candidate is {p.ci_model_name}@{alias} (v{version}, same bytes)"
    if aliases.get(PRODUCTION):
        from labs.common.tracking import load_sklearn_model

        current = load_sklearn_model(f"models:/{p.ci_model_name}@{PRODUCTION}")
        champion = {"roc_auc": evaluate_model(current, holdout)["roc_auc"]}
    decision = run_gate("pipeline", metrics, champion, thresholds)
    record = {
        **decision.as_dict(),
        "unchanged": unchanged,
        "model_sha256": sha,
        "sigma": sigma,
        "margin": margin,
        "champion": champion,
    }
    (_report_dir() / "gate.json").write_text(json.dumps(record, indent=2) + "\n")
    if unchanged:
        return f"nothing to gate: {unchanged}"
    if not decision.passed:
        raise StageFailed(decision.reason)
    against = "floors only (no production version yet)" if champion is None else "champion"
    return f"{decision.reason} [{against}; σ={sigma:.4f}, margin={margin:.4f}]"


def register() -> str:
    """Register the gated model (lineage tags) and point ``staging`` at it."""
    import mlflow

    from labs.cicd.gate import Check, GateDecision, stage_version
    from labs.cicd.params import CicdParams
    from labs.cicd.provenance import lineage_tags
    from labs.common.params import params_for
    from labs.common.registration import register_version
    from labs.common.tracking import audit_log_path, configure_tracking, load_model_file

    path = _report_dir() / "gate.json"
    if not path.exists():
        raise StageFailed(f"{path} is missing: the gate stage has not run")
    record = json.loads(path.read_text())
    if record.get("unchanged"):
        return f"nothing to register: {record['unchanged']}"
    decision = GateDecision(
        record["candidate"], tuple(Check(**c) for c in record["checks"]), record["metrics"]
    )
    if not decision.passed:
        raise StageFailed(f"the gate did not pass: {decision.reason}")
    p = params_for(CicdParams, "cicd")
    configure_tracking()
    client = mlflow.MlflowClient()
    model = load_model_file(_root() / MODEL)
    if model_sha := record.get("model_sha256"):
        from labs.common.tracking import model_sha256

        if model_sha256(model) != model_sha:
            raise StageFailed("the model changed since the gate ran; run the gate again")
    version, created = register_version(
        client, p.ci_model_name, model, experiment=EXPERIMENT, tags=lineage_tags(_root() / TRAIN)
    )
    stage_version(client, p.ci_model_name, version, decision, audit_log=audit_log_path())
    return f"{p.ci_model_name} v{version} ({'new' if created else 'existing'}) → staging"


def promote() -> str:
    """``staging`` → ``production``, audited; refused unless the version is the gated one."""
    import getpass

    import mlflow

    from labs.cicd.gate import STAGING, promote_to_production
    from labs.cicd.params import CicdParams
    from labs.common.params import params_for
    from labs.common.registry import alias_version
    from labs.common.tracking import audit_log_path, configure_tracking

    p = params_for(CicdParams, "cicd")
    configure_tracking()
    client = mlflow.MlflowClient()
    try:
        version = os.environ.get("PROMOTE_VERSION") or alias_version(
            client, p.ci_model_name, STAGING
        )
    except mlflow.exceptions.MlflowException as err:
        raise StageFailed(f"{p.ci_model_name} is not registered: {err}") from None
    if not version:
        raise StageFailed(f"nothing at {p.ci_model_name}@{STAGING} to promote")
    reason = os.environ.get("PROMOTE_REASON") or f"make ci-promote by {getpass.getuser()}"
    move = promote_to_production(
        client, p.ci_model_name, version, reason=reason, audit_log=audit_log_path()
    )
    before = f"v{move.from_version}" if move.from_version else "nothing"
    return f"{p.ci_model_name} production: {before} → v{move.to_version} ({reason})"


STAGES: dict[str, Callable[[], str]] = {
    "lint": lint,
    "unit": unit,
    "data": data,
    "repro": repro,
    "gate": gate,
    "register": register,
    "promote": promote,
}


def run_stages(
    names: list[str],
    stages: dict[str, Callable[[], str]] | None = None,
    out: Callable[[str], None] = print,
) -> int:
    """Run ``names`` in order, one line per stage; stop at the first failure (exit 1, or 2
    for a refusal), naming the stage and the reason."""
    stages = stages or STAGES
    start = time.perf_counter()
    for i, name in enumerate(names, 1):
        out(f"[{i}/{len(names)}] {name} …")
        began = time.perf_counter()
        try:
            detail = stages[name]()
        except (StageFailed, Refusal) as err:
            took = time.perf_counter() - began
            out(f"[{i}/{len(names)}] {name} FAILED after {took:.1f}s")
            out(f"ci: stopped at stage '{name}': {err}")
            skipped = names[i:]
            if skipped:
                out(f"ci: not run: {', '.join(skipped)}")
            return 2 if isinstance(err, Refusal) else 1
        out(f"[{i}/{len(names)}] {name} ok ({time.perf_counter() - began:.1f}s): {detail}")
    out(f"ci: {len(names)} stages passed in {time.perf_counter() - start:.1f}s")
    return 0


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 1 or (args[0] not in STAGES and args[0] != "all"):
        print(f"usage: python -m labs.cicd.ci {{all|{'|'.join(STAGES)}}}", file=sys.stderr)
        return 2
    from labs.common.entry import quiet_libraries
    from labs.common.tracking import offline_env

    offline_env()
    with quiet_libraries():
        return run_stages(list(ALL) if args[0] == "all" else [args[0]])


if __name__ == "__main__":
    sys.exit(main())
