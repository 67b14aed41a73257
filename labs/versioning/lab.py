"""Why version control matters in MLOps: code, data and model versions — switch, reproduce,
roll back, and work on them as a team.

Every result of an ML system depends on three things that change: the code (git), the data
(DVC) and the model (the MLflow registry). If each change is versioned, any result can be
reproduced, compared and rolled back, and several people can work on it at once. This lab
shows each of those on the project's own DVC pipeline (generate → prepare → train →
evaluate) and its MLflow registry, in this order:

1. **Data versions.** In a scratch clone of the repo, data v1 is built and trained on, then
   v2 (a newer month: more rows, new customers); the metric changes.
2. **Sharing and reproducing.** v1 is pushed to a DVC remote; a teammate's fresh clone with an
   empty cache pulls it (the same bytes) and ``dvc repro --force`` retrains and re-evaluates
   to v1's metrics exactly.
3. **Experiments.** Another teammate tries hyperparameter settings on v1 with
   ``dvc exp run -S …``; ``dvc exp show`` lists them with params and metrics, and no git
   commit is made.
4. **Model versions.** Both models become versions of a registered model, tagged with the git
   commit, the DVC hash of their training data and their own hash. Following those tags
   restores exactly that data and model (lineage) — and shows that ``git checkout`` alone
   leaves the wrong data in place until ``dvc checkout``. ``champion`` / ``challenger`` are
   aliases; rolling back moves ``champion`` to the previous version and
   ``models:/…@champion`` serves the old predictions exactly; rolling back past the first
   champion is refused and changes nothing. Every move is audited.
5. **Team work.** Processes register versions of the same model at the same moment (their
   registration windows measured to overlap): each model gets its own version, a process with
   the same bytes as another gets that version (compare-and-set under the registry lock),
   nothing is overwritten.

The user's checkout is never touched: the git and DVC work happens in a temporary clone with
its own DVC cache, remote and MLflow store, removed at the end even when the lab fails. The
registry part (4–5) uses the project's MLflow store, under a model name of its own that it
rebuilds on every run (same params, same version numbers), so the real ``churn-model`` and its
``champion`` stay where they are.

The steps live in small modules, in story order: :mod:`.scratch` (the clone and the command
runner), :mod:`.versions` (data versions, the teammate), :mod:`.experiments`, :mod:`.models`
(registry, lineage, rollback), :mod:`.writers` (concurrent registration), :mod:`.claims` and
:mod:`.report`. Independent steps run side by side (each in its own clone) to keep the wall
time down on two cores.
"""

from __future__ import annotations

import contextlib
import json
import shutil
import time
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from labs.common.catalogue import topic
from labs.common.paths import project_root
from labs.common.registration import register_version
from labs.common.registry import MODEL_NAME, reset_lab_model
from labs.common.results import LabResult, artifact_path, log_claims
from labs.versioning.claims import Evidence, make_claims
from labs.versioning.experiments import run_experiments
from labs.versioning.models import (
    EXPERIMENT,
    AuditedAliases,
    demonstrate_rollback,
    follow_lineage,
    register_model_version,
)
from labs.versioning.report import format_report, version_table, write_outputs
from labs.versioning.scratch import Workspace, scratch_workspace
from labs.versioning.versions import (
    HOLDOUT_DATA,
    MODEL_FILE,
    TRAIN_DATA,
    DataVersion,
    build_data_version,
    teammate_reproduces,
)
from labs.versioning.writers import register_concurrently, writer_env, writer_models

QUESTION = topic("versioning").question


@dataclass(frozen=True)
class VersioningParams:
    """Parameters of the versioning lab (``params.yaml`` → ``versioning``)."""

    v1_rows: int = 3000  # data v1: generate.n_rows, generate.seed
    v1_seed: int = 11
    v2_rows: int = 6000  # data v2, "a newer month": more rows, new customers
    v2_seed: int = 12
    experiments: Mapping[str, Sequence[str]] = field(
        default_factory=lambda: {
            "strong-regularisation": ["train.C=0.001"],
            "random-forest": ["train.model_type=random_forest", "train.n_estimators=50"],
        }
    )
    registered_model: str = "churn-model-versioning-lab"
    writers: int = 2  # processes registering their own models at once (+1 twin of the first)
    command_timeout_s: float = 300.0

    def __post_init__(self) -> None:
        for name in ("v1_rows", "v2_rows"):
            if int(getattr(self, name)) < 200:
                raise ValueError(f"versioning.{name} must be >= 200, got {getattr(self, name)!r}")
        if (self.v1_rows, self.v1_seed) == (self.v2_rows, self.v2_seed):
            raise ValueError("versioning: data v2 must differ from v1 (v2_rows or v2_seed)")
        if not self.experiments:
            raise ValueError("versioning.experiments needs at least one named setting")
        for name, overrides in self.experiments.items():
            if isinstance(overrides, str) or not overrides:
                raise ValueError(
                    f"versioning.experiments.{name} must be a list of 'section.key=value', "
                    f"got {overrides!r}"
                )
            for item in overrides:
                key, sep, _ = str(item).partition("=")
                if not sep or "." not in key:
                    raise ValueError(
                        f"versioning.experiments.{name}: {item!r} is not 'section.key=value'"
                    )
        if self.registered_model == MODEL_NAME:
            raise ValueError(
                f"versioning.registered_model must not be the project's {MODEL_NAME!r}: the lab "
                "moves its aliases; use a name of its own"
            )
        if self.writers < 2:
            raise ValueError(f"versioning.writers must be >= 2, got {self.writers!r}")


def run(
    params: VersioningParams,
    out_dir: Path,
    echo: Callable[[str], None] = lambda _: None,
    source: Path | None = None,
    *,
    build_new_version: Callable[..., DataVersion] = build_data_version,
    teammate: Callable[..., tuple[dict[str, Any], dict[str, Any]]] = teammate_reproduces,
    experiment: Callable[..., dict[str, Any]] = run_experiments,
    follow: Callable[..., dict[str, Any]] = follow_lineage,
    register_model: Callable[..., str] = register_model_version,
    aliases: Any = AuditedAliases,
    register_with: Callable[..., tuple[str, bool]] = register_version,
) -> LabResult:
    """Build, switch, reproduce and share data versions; register, promote and roll back models.

    ``source`` is the git checkout to clone (the project's by default); it is only read. The
    keyword arguments are the parts under test (``counterfactuals.py`` swaps in broken ones):
    how data v2 is built and committed, how a teammate reproduces v1, how experiments are run,
    how a registry version's lineage is followed back, how the lab registers its models, how
    aliases move, and how concurrent writers register.
    """
    started = time.perf_counter()
    out_dir.mkdir(parents=True, exist_ok=True)
    timings: dict[str, float] = {}
    audit_log = out_dir / "alias_audit.jsonl"
    name = params.registered_model
    source = (source or project_root()).resolve()

    with contextlib.ExitStack() as stack:
        ws = stack.enter_context(scratch_workspace(source, params.command_timeout_s))
        teammates = stack.enter_context(ThreadPoolExecutor(2))
        # Runs before the pool's exit, which waits for its threads: on an error or Ctrl-C the
        # threads' git and DVC commands are stopped instead of awaited.
        stack.callback(ws.stop)
        head = ws.git("rev-parse", "--short", "HEAD").strip()
        echo(f"Scratch clone of {source} at {head}: {ws.root} (removed at the end)")

        # 1. Data v1: set generate.n_rows/seed, `dvc repro`, commit params.yaml + dvc.lock.
        # The commit is the version: dvc.lock in it pins the md5 of every output. It runs in
        # DVC's processes; meanwhile this one imports MLflow and sets up the registry.
        echo(f"Data v1: {params.v1_rows} rows, seed {params.v1_seed} — dvc repro …")
        v1_build = teammates.submit(build_data_version, ws, "v1", params.v1_rows, params.v1_seed)

        import mlflow
        import pandas as pd

        from labs.common.model import split_xy
        from labs.common.tracking import configure_tracking, load_model_file, start_run

        # The lab's own registered model, empty (refused if someone else made that name).
        configure_tracking()
        client = mlflow.MlflowClient()
        reset_lab_model(client, name, owner=EXPERIMENT, setting="versioning.registered_model")
        audit_log.unlink(missing_ok=True)
        parent = stack.enter_context(start_run(EXPERIMENT, "versioning-lab", _flat_params(params)))
        v1 = v1_build.result()
        keep = ws.root / "keep"  # what later steps need from v1, whatever is checked out then
        keep.mkdir()
        shutil.copy2(ws.repo / MODEL_FILE, keep / "model-v1.skops")
        reference_x, _ = split_xy(pd.read_csv(ws.repo / HOLDOUT_DATA))
        start = time.perf_counter()
        ws.dvc("push")  # v1's data, model and metrics → the shared (local) DVC remote
        timings["dvc_push_s"] = time.perf_counter() - start

        # 2 and 3, on teammates' machines (their own clones at v1, empty caches), while data
        # v2 is built here: one pulls v1 from the remote and reproduces its metric; another
        # tries hyperparameters with `dvc exp run`. Neither touches this workspace.
        echo("  meanwhile a teammate clones v1, runs dvc pull and dvc repro --force …")
        mate = teammates.submit(teammate, ws, v1)
        echo(f"  meanwhile another runs experiments on v1: {', '.join(params.experiments)} …")
        experimenter = teammates.submit(_experiment_on, ws, v1, params.experiments, experiment)

        # 1 (cont.). Data v2, "a newer month": a second commit, other bytes, another metric.
        echo(f"Data v2: {params.v2_rows} rows, seed {params.v2_seed} — dvc repro …")
        v2 = build_new_version(ws, "v2", params.v2_rows, params.v2_seed)
        shutil.copy2(ws.repo / MODEL_FILE, keep / "model-v2.skops")
        shutil.copy2(ws.repo / TRAIN_DATA, keep / "train-v2.csv")
        metrics_diff = json.loads(ws.dvc("metrics", "diff", v1.commit, v2.commit, "--json"))
        timings["repro_v1_s"], timings["repro_v2_s"] = v1.seconds, v2.seconds

        # 4. Register both models in the project's store, tagged with their lineage ...
        echo(f"Registering both models as versions of {name!r} (lineage tags) …")
        numbers = {
            dv.label: register_model(
                client,
                name,
                dv,
                load_model_file(keep / f"model-{dv.label}.skops"),
                parent.info.experiment_id,
            )
            for dv in (v1, v2)
        }
        # ... and follow the tags back: v2 first, then v1 (which is also "switch to v1").
        echo("Following each version's tags back: git checkout, then dvc checkout …")
        lineage = [follow(ws, client, name, numbers[label]) for label in ("v2", "v1")]
        timings["dvc_checkout_s"] = lineage[-1]["dvc_checkout_s"]
        # Promote, challenge, roll back, and one rollback too many — served via the alias.
        echo("v1 → champion, v2 → challenger → champion, roll back …")
        moved = demonstrate_rollback(client, name, numbers, reference_x, audit_log, aliases)

        # 5. Team work: teammates' processes register their own models at the same moment.
        echo(
            f"{params.writers} processes (+1 with the first one's bytes) register {name!r} at once"
        )
        start = time.perf_counter()
        files = writer_models(keep / "train-v2.csv", keep, params.writers, seed=params.v2_seed)
        concurrent = register_concurrently(
            client,
            name,
            files,
            reference_x,
            ws.root / "writers",
            writer_env(ws.env),
            params.command_timeout_s,
            register_with,
        )
        timings["concurrent_registration_s"] = time.perf_counter() - start

        roundtrip, reproduced = mate.result()
        timings["teammate_pull_s"] = roundtrip["seconds"]
        timings["teammate_repro_s"] = reproduced["seconds"]
        experiments = experimenter.result()
        timings["experiments_s"] = experiments["seconds"]
        final_aliases = dict(client.get_registered_model(name).aliases)

        # Interpretation: every claim is decided by the numbers above.
        timings["lab_total_s"] = time.perf_counter() - started
        evidence = Evidence(
            experiments_asked=params.experiments,
            writers_asked=params.writers,
            v1=v1,
            v2=v2,
            roundtrip=roundtrip,
            reproduced=reproduced,
            numbers=numbers,
            lineage=lineage,
            experiments=experiments,
            aliases=moved,
            concurrent=concurrent,
        )
        claims = make_claims(evidence)
        table = version_table(evidence, final_aliases)
        files_out = write_outputs(out_dir, table, metrics_diff, evidence, audit_log, timings)
        echo("")
        echo(format_report(table, metrics_diff, evidence.moves, timings))
        log_claims(claims)
        mlflow.log_metrics(timings)
        for f in files_out:
            mlflow.log_artifact(str(f))
    return LabResult(
        lab="versioning",
        question=QUESTION,
        claims=claims,
        artifacts=[artifact_path(f) for f in files_out],
        mlflow={"experiment": EXPERIMENT, "run_id": parent.info.run_id},
    )


def _experiment_on(
    ws: Workspace,
    v1: DataVersion,
    experiments: Mapping[str, Sequence[str]],
    experiment: Callable[..., dict[str, Any]] = run_experiments,
) -> dict[str, Any]:
    """An experimenter's clone at v1: pull v1's outputs, then ``dvc exp run`` each setting."""
    clone = ws.clone(ws.root / "experimenter", v1.commit)
    ws.dvc("pull", repo=clone)
    return experiment(ws, experiments, v1, repo=clone)


def _flat_params(params: VersioningParams) -> dict[str, Any]:
    flat = asdict(params)
    flat["experiments"] = json.dumps({k: list(v) for k, v in params.experiments.items()})
    return flat
