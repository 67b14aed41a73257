"""Why version control matters in MLOps: code, data and model versions — switch, reproduce,
roll back, and work on them as a team.

Every result of an ML system depends on three things that change: the code (git), the data
(DVC) and the model (the MLflow registry). If each change is versioned, any result can be
reproduced, compared and rolled back, and several people can work on it at once. This lab
shows each of those on the project's own DVC pipeline (generate → prepare → train →
evaluate) and its MLflow registry:

1. **Data versions.** In a scratch clone of the repo, data v1 is built and trained on, then
   v2 (a newer month: more rows, new customers); the metric changes. ``git checkout v1``
   alone leaves v2's files in place; ``dvc checkout`` then restores v1 byte for byte.
   Meanwhile a teammate clones v1 with an empty cache, ``dvc pull``s it from the local remote
   v1 was pushed to (the same bytes), and ``dvc repro --force`` retrains and re-evaluates to
   v1's metrics exactly.
2. **Experiments.** ``dvc exp run -S …`` tries two hyperparameter settings; ``dvc exp show``
   lists them with params and metrics, and no git commit is made.
3. **Model versions.** Both models become versions of a registered model, tagged with the git
   commit, the DVC hash of their training data and their own hash. Following those tags
   restores exactly that data and model (lineage). ``champion`` / ``challenger`` are aliases
   (the stages are deprecated); rolling back moves ``champion`` to the previous version and
   ``models:/…@champion`` serves the old predictions exactly; rolling back past the first
   champion is refused and changes nothing. Every move is audited.
4. **Team work.** Two processes register versions of the same model at the same moment:
   both versions exist, numbered distinctly, nothing is overwritten.

The user's checkout is never touched: everything under 1–2 happens in a temporary clone with
its own DVC cache, remote and MLflow store, removed at the end even when the lab fails. The
registry part (3–4) uses the project's MLflow store, under a model name of its own that it
rebuilds on every run (same params, same version numbers), so the real ``churn-model`` and its
``champion`` stay where they are.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml

from labs.common.catalogue import topic
from labs.common.paths import project_root
from labs.common.registry import (
    CHALLENGER,
    CHAMPION,
    MODEL_NAME,
    AliasMove,
    NoPreviousVersionError,
    alias_version,
    missing_lineage,
    promote,
    read_audit_log,
    reset_lab_model,
    retry_on_locked,
    rollback,
    set_alias,
)
from labs.common.results import Claim, LabResult, artifact_path, log_claims

if TYPE_CHECKING:
    import pandas as pd
    from mlflow import MlflowClient

QUESTION = topic("versioning").question
EXPERIMENT = "lab-versioning"

# Paths inside the project's DVC pipeline (dvc.yaml): what a model version is traced back to.
TRAIN_DATA = "data/prepared/train.csv"
HOLDOUT_DATA = "data/prepared/holdout.csv"
MODEL_FILE = "models/churn-model.skops"
METRICS_FILE = "reports/baseline/holdout.json"
METRIC = "roc_auc"


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
    writers: int = 2  # processes registering versions at the same moment
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


@dataclass(frozen=True)
class DataVersion:
    """One committed state of the pipeline in the scratch repo: its commit, bytes and metrics."""

    label: str
    commit: str
    rows: int
    seed: int
    md5: dict[str, str]  # every DVC output → md5 of the file as built
    metrics: dict[str, float]
    model_sha256: str
    seconds: float


class ScratchError(RuntimeError):
    """A git or DVC command in the scratch workspace failed; its output is in the message."""


# --- the scratch workspace ---------------------------------------------------------------


@dataclass
class Workspace:
    """A throw-away clone of the project: own git history, DVC cache and remote, MLflow store."""

    root: Path
    env: dict[str, str]
    timeout_s: float
    dvc_exe: str

    @property
    def repo(self) -> Path:
        return self.root / "repo"

    @property
    def remote(self) -> Path:
        return self.root / "dvc-remote"

    def git(self, *args: str, repo: Path | None = None) -> str:
        return self._run(["git", *args], repo or self.repo)

    def dvc(self, *args: str, repo: Path | None = None, mlflow_db: Path | None = None) -> str:
        """Run DVC in ``repo`` (the clone by default); its stages log to ``mlflow_db``."""
        return self._run([self.dvc_exe, *args], repo or self.repo, mlflow_db)

    def _run(self, cmd: list[str], cwd: Path, mlflow_db: Path | None = None) -> str:
        # Stages read params.yaml and write next to the repo they run in: the clone's, never
        # the user's (LABS_ROOT would otherwise win).
        env = {**self.env, "LABS_ROOT": str(cwd)}
        if mlflow_db is not None:
            env["MLFLOW_TRACKING_URI"] = f"sqlite:///{mlflow_db}"
        # Own process group: on a timeout or Ctrl-C the stage processes DVC started die too,
        # instead of writing into a scratch directory that is being removed.
        proc = subprocess.Popen(
            cmd,
            cwd=cwd,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            start_new_session=True,
        )
        try:
            out, err = proc.communicate(timeout=self.timeout_s)
        except BaseException:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.communicate()
            raise
        if proc.returncode != 0:
            tail = "\n".join((out + err).strip().splitlines()[-15:])
            raise ScratchError(
                f"`{' '.join(cmd)}` failed (exit {proc.returncode}) in {cwd}:\n{tail}"
            )
        return out


@contextlib.contextmanager
def scratch_workspace(source: Path, timeout_s: float) -> Iterator[Workspace]:
    """Clone ``source`` at HEAD into a temporary directory; remove it on exit, even on errors.

    Uncommitted changes in ``source`` are not in the clone: the lab works on committed code.
    """
    if not (source / ".git").exists():
        raise ScratchError(f"{source} is not a git repository: the versioning lab clones it")
    bin_dir = Path(sys.executable).parent
    dvc_exe = bin_dir / "dvc"
    if not dvc_exe.exists():
        found = shutil.which("dvc")
        if found is None:
            raise ScratchError(f"dvc is not installed next to {sys.executable} nor on PATH")
        dvc_exe = Path(found)
    root = Path(tempfile.mkdtemp(prefix="labs-versioning-"))
    try:
        ws = Workspace(root, _scratch_env(root, bin_dir), timeout_s, str(dvc_exe))
        ws.git("clone", "--quiet", "--no-hardlinks", str(source), str(ws.repo), repo=root)
        _configure_clone(ws, ws.repo)
        yield ws
    finally:
        shutil.rmtree(root, ignore_errors=True)


def _scratch_env(root: Path, bin_dir: Path) -> dict[str, str]:
    from labs.common.tracking import OFFLINE_ENV

    # GIT_DIR, GIT_WORK_TREE & co. (set inside git hooks, for instance) would point git at the
    # user's repo instead of the clone: drop every GIT_* variable.
    env = {k: v for k, v in os.environ.items() if not k.startswith("GIT_")}
    env.update(OFFLINE_ENV)
    # DVC stages run `python …`: the venv's, the one running this lab.
    env["PATH"] = f"{bin_dir}{os.pathsep}{env.get('PATH', '')}"
    # The stages' MLflow runs and `churn-model` versions go to a store inside the scratch.
    env["MLFLOW_TRACKING_URI"] = f"sqlite:///{root / 'mlflow.db'}"
    if not _venv_has_bytecode():
        # Every DVC stage is a fresh interpreter importing mlflow and scikit-learn. A venv
        # installed by uv holds no bytecode, and where PYTHONDONTWRITEBYTECODE is set none is
        # ever written, so each of the lab's ~25 DVC and stage processes would compile those
        # libraries from source again (measured: 6 s instead of 2 s to import mlflow). A
        # bytecode cache inside the scratch makes that once per run; the venv is not touched.
        env.pop("PYTHONDONTWRITEBYTECODE", None)
        env["PYTHONPYCACHEPREFIX"] = str(root / "pycache")
    return env


def _venv_has_bytecode() -> bool:
    """Whether mlflow (the heaviest import of a stage) has compiled bytecode to load."""
    import importlib.util

    spec = importlib.util.find_spec("mlflow")
    if spec is None or spec.origin is None:
        return True  # nothing to speed up
    return Path(importlib.util.cache_from_source(spec.origin)).exists()


def _configure_clone(ws: Workspace, repo: Path) -> None:
    """Identity and hooks for the clone's commits; its own DVC cache, remote and site cache."""
    hooks = ws.root / "no-hooks"
    hooks.mkdir(exist_ok=True)
    for key, value in (
        ("user.name", "versioning lab"),
        ("user.email", "versioning-lab@localhost"),
        ("commit.gpgsign", "false"),
        ("core.hooksPath", str(hooks)),  # no global pre-commit hooks in a demo repo
    ):
        ws.git("config", key, value, repo=repo)
    # Written directly (not with `dvc config`, ~1 s a call). Local config wins over a global
    # one, so a user-wide cache.dir can never make the lab write into a shared cache, and DVC's
    # per-repo index (otherwise under /var/tmp/dvc) is removed with the scratch.
    (repo / ".dvc" / "config.local").write_text(
        "[core]\n"
        "    remote = lab-remote\n"
        f"    site_cache_dir = {repo.parent / (repo.name + '-dvc-site')}\n"
        "[cache]\n"
        f"    dir = {repo / '.dvc' / 'cache'}\n"
        "['remote \"lab-remote\"']\n"
        f"    url = {ws.remote}\n"
    )


# --- 1. data versions ----------------------------------------------------------------------


def build_data_version(ws: Workspace, label: str, rows: int, seed: int) -> DataVersion:
    """Set the generate stage's params, ``dvc repro``, commit params.yaml + dvc.lock."""
    _set_generate_params(ws.repo / "params.yaml", rows, seed)
    start = time.perf_counter()
    ws.dvc("repro")
    seconds = time.perf_counter() - start
    ws.git("add", "params.yaml", "dvc.lock")
    ws.git("commit", "--quiet", "-m", f"data {label}: generate.n_rows={rows}, generate.seed={seed}")
    return DataVersion(
        label=label,
        commit=ws.git("rev-parse", "HEAD").strip(),
        rows=rows,
        seed=seed,
        md5=file_md5s(ws.repo, lock_outs(ws.repo)),
        metrics=read_metrics(ws.repo),
        model_sha256=sha256(ws.repo / MODEL_FILE),
        seconds=seconds,
    )


def _set_generate_params(path: Path, rows: int, seed: int) -> None:
    """Set ``generate.n_rows`` and ``generate.seed`` in a params.yaml, nothing else."""
    # A line edit, not a YAML round trip: comments survive and `git diff` shows two lines.
    lines = path.read_text().splitlines(keepends=True)
    wanted = {"n_rows": rows, "seed": seed}
    section, done = None, set()
    for i, line in enumerate(lines):
        if line.strip() and not line[0].isspace():
            section = line.split(":")[0].strip()
        elif section == "generate":
            key = line.strip().split(":")[0]
            if key in wanted:
                indent = line[: len(line) - len(line.lstrip())]
                lines[i] = f"{indent}{key}: {wanted[key]}\n"
                done.add(key)
    if done != set(wanted):
        raise ScratchError(f"{path} has no generate.{sorted(set(wanted) - done)} to change")
    path.write_text("".join(lines))


def lock_outs(repo: Path) -> list[str]:
    """Every output path that ``dvc.lock`` pins (data, model, metrics, plots)."""
    lock = yaml.safe_load((repo / "dvc.lock").read_text())
    return sorted(o["path"] for stage in lock["stages"].values() for o in stage.get("outs", []))


def lock_md5(repo: Path, path: str) -> str | None:
    """The md5 ``dvc.lock`` records for output ``path``."""
    lock = yaml.safe_load((repo / "dvc.lock").read_text())
    for stage in lock["stages"].values():
        for out in stage.get("outs", []):
            if out["path"] == path:
                return out["md5"]
    return None


def file_md5s(repo: Path, paths: Sequence[str]) -> dict[str, str]:
    """md5 of each file (DVC's own content hash for a file); "missing" if it is not there."""
    return {
        p: hashlib.md5((repo / p).read_bytes()).hexdigest() if (repo / p).is_file() else "missing"
        for p in paths
    }


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def read_metrics(repo: Path) -> dict[str, float]:
    return json.loads((repo / METRICS_FILE).read_text())


def same_files(found: Mapping[str, str], expected: Mapping[str, str]) -> int:
    """How many of ``expected``'s files have exactly the expected bytes."""
    return sum(found.get(p) == md5 for p, md5 in expected.items())


# --- 3. model versions: register with lineage, then follow it back -------------------------


def register_model_version(
    client: MlflowClient, name: str, version: DataVersion, model: Any, experiment_id: str
) -> str:
    """Log ``model`` in a nested run and register it, tagged with where it came from."""
    import mlflow

    from labs.common.tracking import log_sklearn_model

    tags = {
        # The commit whose dvc.lock pins this model's data and file — the one made after the
        # repro. (HEAD at training time is its parent: it pins the previous data.)
        "git_commit": version.commit,
        "data_md5": version.md5[TRAIN_DATA],  # DVC's content address of the training data
        "model_sha256": version.model_sha256,
        "data_version": version.label,
        f"holdout_{METRIC}": f"{version.metrics[METRIC]:.6f}",
    }
    with mlflow.start_run(
        run_name=f"model-data-{version.label}", nested=True, experiment_id=experiment_id
    ):
        mlflow.log_params(
            {
                "data_version": version.label,
                "generate.n_rows": version.rows,
                "generate.seed": version.seed,
            }
        )
        mlflow.log_metrics({f"holdout_{k}": v for k, v in version.metrics.items()})
        mlflow.set_tags(tags)
        info = log_sklearn_model(model, registered_model_name=name)
    number = str(info.registered_model_version)
    for key, value in tags.items():
        client.set_model_version_tag(name, number, key, value)
    return number


def follow_lineage(ws: Workspace, client: MlflowClient, name: str, number: str) -> dict[str, Any]:
    """From a registry version's tags alone: check out its commit and data, compare the bytes.

    Also records what ``git checkout`` alone leaves in the workspace (the data of whatever was
    checked out before), to show why ``dvc checkout`` is the second half of switching versions.
    """
    registered = client.get_model_version(name, number)
    tags, missing = registered.tags, missing_lineage(registered)
    outs = lock_outs(ws.repo)
    ws.git("checkout", "--quiet", tags["git_commit"])
    after_git = file_md5s(ws.repo, outs)
    start = time.perf_counter()
    ws.dvc("checkout")
    seconds = time.perf_counter() - start
    after_dvc = file_md5s(ws.repo, outs)
    return {
        "version": number,
        "missing_tags": missing,
        "commit": tags["git_commit"],
        "lock_pins_data": lock_md5(ws.repo, TRAIN_DATA) == tags["data_md5"],
        "data_matches": after_dvc[TRAIN_DATA] == tags["data_md5"],
        "model_matches": sha256(ws.repo / MODEL_FILE) == tags["model_sha256"],
        "after_git_checkout": after_git,
        "after_dvc_checkout": after_dvc,
        "dvc_checkout_s": seconds,
    }


def predict(model_uri: str, x: pd.DataFrame) -> Any:
    """Churn probabilities from a registry model (``models:/name@alias`` or ``/version``)."""
    from labs.common.tracking import load_sklearn_model

    return load_sklearn_model(model_uri).predict_proba(x)[:, 1]


# --- 1 (cont.). a teammate pulls v1 through the remote and reproduces it ------------------


def teammate_reproduces(ws: Workspace, v1: DataVersion) -> tuple[dict[str, Any], dict[str, Any]]:
    """A teammate's machine: a fresh clone at v1 with an empty DVC cache and its own MLflow
    store; ``dvc pull`` from the shared remote, then ``dvc repro --force`` from training on.

    Returns the pull's measurements and the reproduction's.
    """
    mate = ws.root / "teammate"
    ws.git("clone", "--quiet", "--no-hardlinks", str(ws.repo), str(mate), repo=ws.root)
    ws.git("checkout", "--quiet", v1.commit, repo=mate)
    _configure_clone(ws, mate)
    cache = mate / ".dvc" / "cache"
    cached_before = _count_files(cache)
    present_before = same_files(file_md5s(mate, list(v1.md5)), v1.md5)
    start = time.perf_counter()
    ws.dvc("pull", repo=mate)
    pulled = {
        "files": len(v1.md5),
        "identical_before": present_before,
        "identical_after": same_files(file_md5s(mate, list(v1.md5)), v1.md5),
        "cache_files_before": cached_before,
        "cache_files_after": _count_files(cache),
        "remote_files": _count_files(ws.remote),
        "seconds": time.perf_counter() - start,
    }
    start = time.perf_counter()
    # --force: really re-run (not restore from DVC's run cache); from `train` on, because the
    # data stages' outputs are what was just pulled and checked byte for byte.
    ws.dvc(
        "repro",
        "--force",
        "--downstream",
        "train",
        repo=mate,
        mlflow_db=ws.root / "teammate-mlflow.db",
    )
    reproduced = {
        "metrics": read_metrics(mate),
        "model_sha256": sha256(mate / MODEL_FILE),
        "lock_unchanged": ws.git("status", "--porcelain", repo=mate) == "",
        "seconds": time.perf_counter() - start,
    }
    return pulled, reproduced


def _count_files(path: Path) -> int:
    return sum(1 for p in path.rglob("*") if p.is_file()) if path.exists() else 0


# --- 2. experiments ----------------------------------------------------------------------


def run_experiments(
    ws: Workspace, experiments: Mapping[str, Sequence[str]], baseline: DataVersion
) -> dict[str, Any]:
    """``dvc exp run -S …`` per setting on the baseline commit, then ``dvc exp show``."""
    head_before = ws.git("rev-parse", "HEAD").strip()
    # Experiments are kept as hidden git refs (refs/exps/…), not as commits on a branch.
    commits_before = ws.git("rev-list", "--count", "--branches", "--tags").strip()
    start = time.perf_counter()
    for name, overrides in experiments.items():
        # An experiment starts from the workspace, and the previous one left its params there.
        ws.git("checkout", "--quiet", "--", "params.yaml", "dvc.lock")
        args = ["exp", "run", "--name", name]
        for item in overrides:
            args += ["--set-param", str(item)]
        ws.dvc(*args)
    seconds = time.perf_counter() - start
    shown = json.loads(ws.dvc("exp", "show", "--json"))
    rows = _experiment_rows(shown, baseline.commit)
    ws.git("checkout", "--quiet", "--", "params.yaml", "dvc.lock")
    return {
        "rows": rows,
        "raw": shown,
        "head_unchanged": ws.git("rev-parse", "HEAD").strip() == head_before,
        "commits_unchanged": ws.git("rev-list", "--count", "--branches", "--tags").strip()
        == commits_before,
        # DVC keeps experiment commits under refs/exps/<baseline sha, split 2/38>/<name>.
        "exp_refs": len(
            ws.git(
                "for-each-ref",
                "--format=%(refname)",
                f"refs/exps/{baseline.commit[:2]}/{baseline.commit[2:]}/",
            ).splitlines()
        ),
        "seconds": seconds,
    }


def _experiment_rows(shown: list[dict[str, Any]], baseline: str) -> list[dict[str, Any]]:
    """Flatten ``dvc exp show --json``: the baseline commit and each of its experiments."""

    def row(rev: dict[str, Any], name: str) -> dict[str, Any]:
        data = rev.get("data") or {}
        params = ((data.get("params") or {}).get("params.yaml") or {}).get("data") or {}
        metrics = ((data.get("metrics") or {}).get(METRICS_FILE) or {}).get("data") or {}
        return {"name": name, "rev": rev["rev"], "params": params, "metrics": metrics}

    rows = []
    for entry in shown:
        if entry.get("rev") != baseline:
            continue
        rows.append(row(entry, "baseline"))
        for exp in entry.get("experiments") or []:
            rev = exp["revs"][0]
            rows.append(row(rev, rev.get("name") or exp.get("name") or rev["rev"][:7]))
    return rows


def _applied(params: Mapping[str, Any], override: str) -> bool:
    """Whether ``section.key=value`` is what the experiment's params.yaml holds."""
    key, _, value = override.partition("=")
    return param_value(params, key) == yaml.safe_load(value)


def param_value(params: Mapping[str, Any], dotted: str) -> Any:
    """``params["train"]["C"]`` for ``"train.C"`` (None if absent)."""
    value: Any = params
    for part in dotted.split("."):
        if not isinstance(value, Mapping) or part not in value:
            return None
        value = value[part]
    return value


# --- 4. team work: two writers register at the same moment --------------------------------

# A writer is a separate interpreter (not multiprocessing): it needs nothing from the caller's
# __main__, so run() works the same from `python -m`, pytest or a notebook.
_WRITER = (
    "import sys; from labs.versioning.lab import writer_main; sys.exit(writer_main(sys.argv[1:]))"
)


def writer_main(argv: Sequence[str]) -> int:
    """One teammate's process: ``NAME WRITER MODEL_FILE GATE_DIR``; waits for ``GATE_DIR/go``."""
    from labs.common.tracking import (
        get_or_create_experiment,
        load_model_file,
        log_sklearn_model,
        start_run,
    )

    name, writer, model_file, gate = argv[0], int(argv[1]), Path(argv[2]), Path(argv[3])
    model = load_model_file(model_file)
    get_or_create_experiment(EXPERIMENT)  # imports and the first DB access happen before the race
    (gate / f"ready-{writer}").touch()
    deadline = time.monotonic() + 120
    while not (gate / "go").exists():
        if time.monotonic() > deadline:
            raise TimeoutError(f"writer {writer}: no start signal in {gate}")
        time.sleep(0.002)
    started = time.time()

    def register() -> tuple[str, str]:
        with start_run(EXPERIMENT, f"concurrent-writer-{writer}", {"writer": writer}) as run:
            info = log_sklearn_model(model, registered_model_name=name)
        return str(info.registered_model_version), run.info.run_id

    (version, run_id), retries = retry_on_locked(register)
    result = {
        "writer": writer,
        "version": version,
        "run_id": run_id,
        "model_sha256": sha256(model_file),
        "started": started,
        "ended": time.time(),
        "retries": retries,
    }
    (gate / f"result-{writer}.json").write_text(json.dumps(result))
    return 0


def register_concurrently(
    client: MlflowClient,
    name: str,
    model_files: Sequence[Path],
    x: pd.DataFrame,
    gate: Path,
    env: Mapping[str, str],
    timeout_s: float,
) -> dict[str, Any]:
    """Writers in separate processes register at once; then check every version they made."""
    from labs.common.tracking import load_model_file

    n = len(model_files)
    count_before = len(client.search_model_versions(f"name='{name}'"))
    champion_before = alias_version(client, name, CHAMPION)
    gate.mkdir(parents=True, exist_ok=True)
    logs = [gate / f"writer-{i}.log" for i in range(n)]
    procs = []
    for i, f in enumerate(model_files):
        with logs[i].open("w") as log:  # a file, not a pipe: a chatty writer never blocks
            procs.append(
                subprocess.Popen(
                    [sys.executable, "-c", _WRITER, name, str(i), str(f), str(gate)],
                    env=dict(env),
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    start_new_session=True,
                )
            )
    try:
        # Release all writers at once, when each has imported MLflow and loaded its model.
        deadline = time.monotonic() + timeout_s
        while not all((gate / f"ready-{i}").exists() for i in range(n)):
            if any(p.poll() is not None for p in procs) or time.monotonic() > deadline:
                break
            time.sleep(0.005)
        (gate / "go").touch()
        for i, proc in enumerate(procs):
            if proc.wait(timeout=timeout_s) != 0:
                tail = "\n".join(logs[i].read_text().strip().splitlines()[-15:])
                raise RuntimeError(f"writer {i} failed (exit {proc.returncode}):\n{tail}")
    finally:
        for proc in procs:
            if proc.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
    writers = [json.loads((gate / f"result-{i}.json").read_text()) for i in range(n)]
    versions = [w["version"] for w in writers]
    # Nothing overwritten: each version serves exactly its own writer's model.
    own_model = [
        bool(
            (
                predict(f"models:/{name}/{w['version']}", x)
                == load_model_file(Path(model_files[w["writer"]])).predict_proba(x)[:, 1]
            ).all()
        )
        for w in writers
    ]
    starts = [w["started"] for w in writers]
    return {
        "writers": writers,
        "versions": versions,
        "distinct": len(set(versions)) == n,
        "count_before": count_before,
        "count_after": len(client.search_model_versions(f"name='{name}'")),
        "own_model": own_model,
        "overlapped": max(starts) < min(w["ended"] for w in writers),
        "start_spread_ms": 1000 * (max(starts) - min(starts)),
        "retries": sum(w["retries"] for w in writers),
        "champion_unchanged": alias_version(client, name, CHAMPION) == champion_before,
    }


def _writer_env(ws: Workspace) -> dict[str, str]:
    """The lab's own environment and MLflow store, plus the scratch's bytecode cache."""
    from labs.common.tracking import tracking_uri

    env = {**os.environ, "MLFLOW_TRACKING_URI": tracking_uri()}
    if "PYTHONPYCACHEPREFIX" in ws.env:
        env.pop("PYTHONDONTWRITEBYTECODE", None)
        env["PYTHONPYCACHEPREFIX"] = ws.env["PYTHONPYCACHEPREFIX"]
    return env


# --- the lab -------------------------------------------------------------------------------


def run(
    params: VersioningParams,
    out_dir: Path,
    echo: Callable[[str], None] = lambda _: None,
    source: Path | None = None,
) -> LabResult:
    """Build, switch, reproduce and share data versions; register, promote and roll back models.

    ``source`` is the git checkout to clone (the project's by default); it is only read.
    """
    started = time.perf_counter()
    import mlflow
    import pandas as pd

    from labs.common.model import split_xy
    from labs.common.tracking import configure_tracking, load_model_file, start_run

    out_dir.mkdir(parents=True, exist_ok=True)
    timings: dict[str, float] = {}
    audit_log = out_dir / "alias_audit.jsonl"
    name = params.registered_model
    source = (source or project_root()).resolve()

    configure_tracking()
    client = mlflow.MlflowClient()
    reset_lab_model(client, name, owner=EXPERIMENT, setting="versioning.registered_model")
    audit_log.unlink(missing_ok=True)
    with start_run(EXPERIMENT, "versioning-lab", _flat_params(params)) as parent:
        experiment_id = parent.info.experiment_id
        with scratch_workspace(source, params.command_timeout_s) as ws:
            head = ws.git("rev-parse", "--short", "HEAD").strip()
            echo(f"Scratch clone of {source} at {head}: {ws.root} (removed at the end)")

            # 1. Two data versions, each a commit of params.yaml + dvc.lock.
            echo(f"Data v1: {params.v1_rows} rows, seed {params.v1_seed} — dvc repro …")
            v1 = build_data_version(ws, "v1", params.v1_rows, params.v1_seed)
            keep = ws.root / "keep"
            keep.mkdir()
            shutil.copy2(ws.repo / MODEL_FILE, keep / "model-v1.skops")
            reference_x, _ = split_xy(pd.read_csv(ws.repo / HOLDOUT_DATA))
            start = time.perf_counter()
            ws.dvc("push")  # v1's data, model and metrics → the local remote
            timings["dvc_push_s"] = time.perf_counter() - start

            # Meanwhile, on "a teammate's machine": clone v1 from git with an empty cache, pull
            # its data from the remote and reproduce its metric — while v2 is built here.
            echo(f"Data v2: {params.v2_rows} rows, seed {params.v2_seed} — dvc repro …")
            echo("  meanwhile a teammate clones v1, runs dvc pull and dvc repro --force …")
            with ThreadPoolExecutor(1) as meanwhile:
                teammate = meanwhile.submit(teammate_reproduces, ws, v1)
                v2 = build_data_version(ws, "v2", params.v2_rows, params.v2_seed)
                roundtrip, reproduced = teammate.result()
            shutil.copy2(ws.repo / MODEL_FILE, keep / "model-v2.skops")
            metrics_diff = json.loads(ws.dvc("metrics", "diff", v1.commit, v2.commit, "--json"))
            timings["repro_v1_s"], timings["repro_v2_s"] = v1.seconds, v2.seconds
            timings["teammate_pull_s"] = roundtrip["seconds"]
            timings["teammate_repro_s"] = reproduced["seconds"]

            # 3. Register both models in the project's store, tagged with their lineage ...
            echo(f"Registering both models as versions of {name!r} (lineage tags) …")
            numbers = {
                dv.label: register_model_version(
                    client,
                    name,
                    dv,
                    load_model_file(keep / f"model-{dv.label}.skops"),
                    experiment_id,
                )
                for dv in (v1, v2)
            }

            # ... and follow the tags back: v2 first, then v1 (which is also "switch to v1").
            echo("Following each version's tags back: git checkout, then dvc checkout …")
            lineage = [follow_lineage(ws, client, name, numbers[label]) for label in ("v2", "v1")]
            timings["dvc_checkout_s"] = lineage[-1]["dvc_checkout_s"]

            # 2. Experiments on v1 in the scratch — meanwhile, in the project's registry:
            # promote, challenge and roll back (3), and two writers at the same moment (4).
            echo(f"Experiments on v1: {', '.join(params.experiments)} — dvc exp run -S …")
            with ThreadPoolExecutor(1) as meanwhile:
                running = meanwhile.submit(run_experiments, ws, params.experiments, v1)
                echo("  meanwhile: v1 → champion, v2 → challenger → champion, roll back …")
                aliases = demonstrate_rollback(client, name, numbers, reference_x, audit_log)
                echo(f"  meanwhile: {params.writers} processes register {name!r} at once …")
                start = time.perf_counter()
                files = [keep / f"model-v{1 + i % 2}.skops" for i in range(params.writers)]
                concurrent = register_concurrently(
                    client,
                    name,
                    files,
                    reference_x,
                    ws.root / "writers",
                    _writer_env(ws),
                    params.command_timeout_s,
                )
                timings["concurrent_registration_s"] = time.perf_counter() - start
                experiments = running.result()
            timings["experiments_s"] = experiments["seconds"]

        timings["lab_total_s"] = time.perf_counter() - started
        claims = make_claims(
            params, v1, v2, lineage, reproduced, roundtrip, experiments, aliases, concurrent
        )
        table = version_table(params, v1, v2, numbers, reproduced, experiments, concurrent, client)
        files_out = _write_outputs(
            out_dir, table, metrics_diff, experiments, aliases, audit_log, timings
        )
        echo("")
        echo(format_report(table, metrics_diff, aliases["moves"], timings))
        log_claims(claims)
        mlflow.log_metrics(timings)
        for f in files_out:
            mlflow.log_artifact(str(f))
        run_id = parent.info.run_id

    return LabResult(
        lab="versioning",
        question=QUESTION,
        claims=claims,
        artifacts=[artifact_path(f) for f in files_out],
        mlflow={"experiment": EXPERIMENT, "run_id": run_id},
    )


def demonstrate_rollback(
    client: MlflowClient, name: str, numbers: Mapping[str, str], x: pd.DataFrame, audit_log: Path
) -> dict[str, Any]:
    """v1 → champion; v2 → challenger, promoted; roll back. Predictions via the alias each time."""
    uri = f"models:/{name}@{CHAMPION}"
    logged_before = len(read_audit_log(audit_log))
    promote(client, name, numbers["v1"], reason="data v1: first model", audit_log=audit_log)
    before = predict(uri, x)
    set_alias(
        client, name, CHALLENGER, numbers["v2"], reason="retrained on data v2", audit_log=audit_log
    )
    promote(client, name, numbers["v2"], reason="challenger on data v2", audit_log=audit_log)
    promoted = predict(uri, x)
    rollback(client, name, reason="v2 rejected after release", audit_log=audit_log)
    after = predict(uri, x)
    champion_after = alias_version(client, name, CHAMPION)
    moves = read_audit_log(audit_log)[logged_before:]
    # v1 was the first champion of this (fresh) model: one more rollback has nowhere to go.
    try:
        rollback(client, name, reason="one rollback too many", audit_log=audit_log)
        refusal = ""
    except NoPreviousVersionError as err:
        refusal = str(err)
    return {
        "versions": dict(numbers),
        "champion_after": champion_after,
        "max_diff_promoted": float(abs(promoted - before).max()),
        "max_diff_rolled_back": float(abs(after - before).max()),
        "rows": len(x),
        "moves": moves,
        "refusal": refusal,
        "champion_after_refusal": alias_version(client, name, CHAMPION),
        "moves_after_refusal": len(read_audit_log(audit_log)) - logged_before,
    }


def make_claims(
    params: VersioningParams,
    v1: DataVersion,
    v2: DataVersion,
    lineage: list[dict[str, Any]],
    reproduced: dict[str, Any],
    roundtrip: dict[str, Any],
    experiments: dict[str, Any],
    aliases: dict[str, Any],
    concurrent: dict[str, Any],
) -> list[Claim]:
    """Turn the measurements into the interview answer's claims, each decided by numbers."""
    restore = lineage[-1]
    files = len(v1.md5)
    exp_rows = {r["name"]: r for r in experiments["rows"]}
    settings_applied = {
        name: name in exp_rows and all(_applied(exp_rows[name]["params"], o) for o in overrides)
        for name, overrides in params.experiments.items()
    }
    moves: list[AliasMove] = aliases["moves"]
    v1_num, v2_num = aliases["versions"]["v1"], aliases["versions"]["v2"]
    champion_moves = [(m.action, m.to_version) for m in moves if m.alias == CHAMPION]
    expected_champion = [("promote", v1_num), ("promote", v2_num), ("rollback", v1_num)]
    challenger_moves = [(m.action, m.to_version) for m in moves if m.alias == CHALLENGER]
    return [
        Claim(
            "data_versions_distinct",
            "New data is a new version: v2's bytes and metrics differ from v1's, and "
            "`dvc metrics diff` shows the change.",
            passed=v1.md5[TRAIN_DATA] != v2.md5[TRAIN_DATA] and v1.metrics != v2.metrics,
            measured={
                "data_md5_v1": v1.md5[TRAIN_DATA],
                "data_md5_v2": v2.md5[TRAIN_DATA],
                "rows_v1": v1.rows,
                "rows_v2": v2.rows,
                f"{METRIC}_v1": v1.metrics[METRIC],
                f"{METRIC}_v2": v2.metrics[METRIC],
                "accuracy_v1": v1.metrics["accuracy"],
                "accuracy_v2": v2.metrics["accuracy"],
            },
        ),
        Claim(
            "data_restored_identical",
            "`git checkout v1` alone leaves v2's data in place; `dvc checkout` then restores "
            "every v1 output byte for byte (same md5).",
            passed=same_files(restore["after_dvc_checkout"], v1.md5) == files
            and same_files(restore["after_git_checkout"], v1.md5) < files,
            measured={
                "files": files,
                "identical_after_git_checkout_only": same_files(
                    restore["after_git_checkout"], v1.md5
                ),
                "identical_after_dvc_checkout": same_files(restore["after_dvc_checkout"], v1.md5),
                "data_md5_v1": v1.md5[TRAIN_DATA],
                "data_md5_restored": restore["after_dvc_checkout"][TRAIN_DATA],
                "dvc_checkout_s": restore["dvc_checkout_s"],
            },
        ),
        Claim(
            "metric_reproduced_exactly",
            "A teammate's clone at v1 (data pulled from the remote) runs `dvc repro --force`: "
            "retraining and re-evaluating give exactly v1's metrics, model file and dvc.lock.",
            passed=reproduced["metrics"] == v1.metrics
            and reproduced["model_sha256"] == v1.model_sha256
            and reproduced["lock_unchanged"],
            measured={
                f"{METRIC}_v1": v1.metrics[METRIC],
                f"{METRIC}_reproduced": reproduced["metrics"][METRIC],
                f"{METRIC}_v2": v2.metrics[METRIC],
                "metrics_identical": reproduced["metrics"] == v1.metrics,
                "model_identical": reproduced["model_sha256"] == v1.model_sha256,
                "dvc_lock_unchanged": reproduced["lock_unchanged"],
                "seconds": reproduced["seconds"],
            },
        ),
        Claim(
            "remote_roundtrip_identical",
            "`dvc push` to a local remote, then `dvc pull` into a teammate's fresh clone with an "
            "empty cache, restores every v1 output byte for byte.",
            passed=roundtrip["cache_files_before"] == 0
            and roundtrip["identical_before"] == 0
            and roundtrip["identical_after"] == roundtrip["files"],
            measured={k: v for k, v in roundtrip.items()},
        ),
        Claim(
            "experiments_tracked",
            "`dvc exp run -S` records each hyperparameter setting with its params and metrics "
            "next to the baseline, as hidden git refs rather than commits on a branch.",
            passed=all(settings_applied.values())
            and all(METRIC in exp_rows[n]["metrics"] for n in params.experiments if n in exp_rows)
            and experiments["head_unchanged"]
            and experiments["commits_unchanged"]
            and experiments["exp_refs"] == len(params.experiments),
            measured={
                **{
                    f"{metric}_{n}": exp_rows[n]["metrics"].get(metric)
                    for n in ("baseline", *params.experiments)
                    if n in exp_rows
                    for metric in (METRIC, "accuracy")
                },
                "settings_applied": sum(settings_applied.values()),
                "settings": len(params.experiments),
                "branch_commits_unchanged": experiments["commits_unchanged"],
                "exp_refs": experiments["exp_refs"],
                "seconds": experiments["seconds"],
            },
        ),
        Claim(
            "lineage_complete",
            "Every registered version carries its git commit, data md5 and model sha256; "
            "checking those out restores exactly that data and model file.",
            passed=all(
                not item["missing_tags"]
                and item["lock_pins_data"]
                and item["data_matches"]
                and item["model_matches"]
                for item in lineage
            ),
            measured={
                "versions_checked": len(lineage),
                "tags_missing": sum(len(item["missing_tags"]) for item in lineage),
                "data_matches": sum(item["data_matches"] for item in lineage),
                "model_matches": sum(item["model_matches"] for item in lineage),
                "lock_pins_data": sum(item["lock_pins_data"] for item in lineage),
            },
        ),
        Claim(
            "rollback_restores_predictions",
            "Rolling `champion` back to the previous version makes `models:/…@champion` serve "
            "the old predictions exactly.",
            passed=aliases["champion_after"] == v1_num
            and aliases["max_diff_promoted"] > 0
            and aliases["max_diff_rolled_back"] == 0.0,
            measured={
                "champion_before": v1_num,
                "champion_promoted": v2_num,
                "champion_after_rollback": aliases["champion_after"],
                "max_prediction_diff_promoted": aliases["max_diff_promoted"],
                "max_prediction_diff_rolled_back": aliases["max_diff_rolled_back"],
                "rows": aliases["rows"],
            },
        ),
        Claim(
            "rollback_refused_without_previous",
            "Rolling back past the first champion is refused with a clear error; the alias and "
            "the audit log stay as they were.",
            passed=bool(aliases["refusal"])
            and aliases["champion_after_refusal"] == v1_num
            and aliases["moves_after_refusal"] == len(moves),
            measured={
                "refused": bool(aliases["refusal"]),
                "champion_after_refusal": aliases["champion_after_refusal"],
                "audit_lines_added": aliases["moves_after_refusal"] - len(moves),
                "error": aliases["refusal"],
            },
        ),
        Claim(
            "alias_moves_audited",
            "MLflow keeps no alias history, so every move is in the audit log: champion → v1, "
            "→ v2, rolled back → v1; the challenger set, then retired on promotion.",
            passed=champion_moves == expected_champion
            and challenger_moves == [("set", v2_num), ("retire", None)]
            and aliases["champion_after"] == champion_moves[-1][1],
            measured={
                "moves_logged": len(moves),
                "champion_moves": len(champion_moves),
                "challenger_moves": len(challenger_moves),
                "last_move": f"{moves[-1].action} v{moves[-1].from_version} → "
                f"v{moves[-1].to_version}",
            },
        ),
        Claim(
            "concurrent_registrations_safe",
            f"{params.writers} processes registering the same model at the same moment get "
            "distinct versions, each serving its own model; nothing is overwritten.",
            passed=concurrent["distinct"]
            and concurrent["count_after"] - concurrent["count_before"] == params.writers
            and all(concurrent["own_model"])
            and concurrent["champion_unchanged"],
            measured={
                "versions": [int(v) for v in concurrent["versions"]],
                "new_versions": concurrent["count_after"] - concurrent["count_before"],
                "each_serves_its_model": sum(concurrent["own_model"]),
                "overlapped": concurrent["overlapped"],
                "start_spread_ms": concurrent["start_spread_ms"],
                "locked_retries": concurrent["retries"],
            },
        ),
    ]


# --- what people look at -----------------------------------------------------------------


def version_table(
    params: VersioningParams,
    v1: DataVersion,
    v2: DataVersion,
    numbers: Mapping[str, str],
    reproduced: dict[str, Any],
    experiments: dict[str, Any],
    concurrent: dict[str, Any],
    client: MlflowClient,
) -> list[dict[str, str]]:
    """One row per version the lab made: data hash, git commit, model version, alias, metric."""
    aliases: dict[str, list[str]] = {}
    for alias, number in client.get_registered_model(params.registered_model).aliases.items():
        aliases.setdefault(str(number), []).append(alias)

    def row(
        version: str,
        change: str,
        commit: str,
        data: str,
        model: str,
        number: str,
        metric: float | None,
    ) -> dict[str, str]:
        return {
            "version": version,
            "change": change,
            "git commit": commit[:8],
            "data md5": data[:8],
            "model sha256": model[:8],
            "registry": f"v{number}" if number else "—",
            "alias": ", ".join(sorted(aliases.get(number, []))) or "—",
            METRIC: "—" if metric is None else f"{metric:.6f}",
        }

    rows = [
        row(
            f"data {dv.label}",
            f"generate n_rows={dv.rows}, seed={dv.seed}",
            dv.commit,
            dv.md5[TRAIN_DATA],
            dv.model_sha256,
            numbers[dv.label],
            dv.metrics[METRIC],
        )
        for dv in (v1, v2)
    ]
    rows.append(
        row(
            "v1 reproduced",
            "teammate: dvc pull, dvc repro --force (train → evaluate)",
            v1.commit,
            v1.md5[TRAIN_DATA],
            reproduced["model_sha256"],
            "",
            reproduced["metrics"][METRIC],
        )
    )
    for exp in experiments["rows"]:
        if exp["name"] == "baseline":
            continue
        change = " ".join(params.experiments.get(exp["name"], []))
        rows.append(
            row(
                f"exp {exp['name']}",
                f"dvc exp run -S {change}",
                exp["rev"],
                v1.md5[TRAIN_DATA],
                "",
                "",
                exp["metrics"].get(METRIC),
            )
        )
    for w in concurrent["writers"]:
        rows.append(
            row(
                f"writer {w['writer']}",
                "registered concurrently",
                "",
                "",
                w["model_sha256"],
                w["version"],
                None,
            )
        )
    return rows


def markdown_table(rows: Sequence[Mapping[str, Any]]) -> str:
    """A padded markdown table: readable in a terminal, rendered on GitHub."""
    if not rows:
        return ""
    columns = list(rows[0])
    width = {c: max(len(c), *(len(str(r[c])) for r in rows)) for c in columns}
    lines = [
        "| " + " | ".join(c.ljust(width[c]) for c in columns) + " |",
        "|" + "|".join("-" * (width[c] + 2) for c in columns) + "|",
    ]
    lines += ["| " + " | ".join(str(r[c]).ljust(width[c]) for c in columns) + " |" for r in rows]
    return "\n".join(lines)


def format_report(
    table: list[dict[str, str]],
    metrics_diff: Mapping[str, Any],
    moves: Sequence[AliasMove],
    timings: Mapping[str, float],
) -> str:
    """The printout: versions, what changed between the data versions, alias moves, timings."""
    diff_rows = [
        {
            "metric": key,
            "v1": f"{d.get('old')}",
            "v2": f"{d.get('new')}",
            "change": f"{d['diff']:+.6f}"
            if isinstance(d.get("diff"), float)
            else str(d.get("diff")),
        }
        for key, d in sorted(metrics_diff.get(METRICS_FILE, {}).items())
    ]
    move_lines = [
        f"  {m.action:<8} {m.alias:<10} {_v(m.from_version):>5} → {_v(m.to_version):<5}  "
        + m.reason
        for m in moves
    ]
    return "\n".join(
        [
            "Versions (data md5 = DVC's hash of data/prepared/train.csv; registry = "
            "MLflow model version):",
            markdown_table(table),
            "",
            "dvc metrics diff v1 v2 (each on its own holdout):",
            markdown_table(diff_rows),
            "",
            "Alias moves (audit log — MLflow keeps no history of them):",
            *move_lines,
            "",
            "Timings: " + ", ".join(f"{k[:-2]} {v:.1f} s" for k, v in timings.items()),
        ]
    )


def _v(version: str | None) -> str:
    return "—" if version is None else f"v{version}"


def _write_outputs(
    out_dir: Path,
    table: list[dict[str, str]],
    metrics_diff: Mapping[str, Any],
    experiments: dict[str, Any],
    aliases: dict[str, Any],
    audit_log: Path,
    timings: Mapping[str, float],
) -> list[Path]:
    """versions.md, versions.png, experiments.json; the audit log is already there."""
    report = out_dir / "versions.md"
    report.write_text(
        "# Versions made by the versioning lab\n\n"
        + format_report(table, metrics_diff, aliases["moves"], timings)
        + "\n"
    )
    exps = out_dir / "experiments.json"
    exps.write_text(json.dumps(experiments["raw"], indent=2) + "\n")
    figure = _plot(out_dir / "versions.png", table, aliases["moves"])
    return [report, figure, exps, audit_log]


def _plot(path: Path, table: list[dict[str, str]], moves: Sequence[AliasMove]) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    scored = [r for r in table if r[METRIC] != "—"]
    values = [float(r[METRIC]) for r in scored]
    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 4.2), width_ratios=[3, 2])
    colours = ["tab:blue" if r["registry"] != "—" else "tab:grey" for r in scored]
    left.bar(range(len(scored)), values, color=colours)
    for i, r in enumerate(scored):
        label = r["registry"] if r["registry"] != "—" else ""
        if r["alias"] != "—":
            label += f"\n@{r['alias']}"
        left.annotate(
            f"{values[i]:.4f}\n{label}".strip(),
            (i, values[i]),
            ha="center",
            va="bottom",
            fontsize=8,
        )
    low, high = min(values), max(values)
    pad = max(0.01, (high - low) * 0.6)
    left.set_ylim(low - pad, high + pad)
    left.set_xticks(range(len(scored)), [r["version"] for r in scored], rotation=20, ha="right")
    left.set(ylabel=f"holdout {METRIC}", title="Metric by version (blue: in the registry)")

    champion = [m for m in moves if m.alias == CHAMPION]
    steps = [int(m.to_version) for m in champion if m.to_version]
    right.step(range(len(steps)), steps, where="post", marker="o")
    right.set_xticks(range(len(steps)), [m.action for m in champion])
    right.set_yticks(sorted(set(steps)), [f"v{s}" for s in sorted(set(steps))])
    right.set(title="champion alias over time (audit log)", ylabel="model version")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def _flat_params(params: VersioningParams) -> dict[str, Any]:
    flat = asdict(params)
    flat["experiments"] = json.dumps({k: list(v) for k, v in params.experiments.items()})
    return flat
