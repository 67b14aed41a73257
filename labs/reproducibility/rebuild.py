"""Rebuild a recorded run from its run id alone::

    python -m labs.reproducibility.rebuild RUN_ID

reads the run's tags and params from MLflow, checks out the recorded commit into a git
worktree in a temporary directory, restores the recorded data with ``dvc checkout`` (from the
user's DVC cache, read only), re-trains *with that commit's code* in a fresh interpreter, and
compares the metrics and the model's sha256 with the recorded ones.
"""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from labs.common.errors import Refusal
from labs.reproducibility.scratch import (
    CommandError,
    configure_dvc,
    dvc_cache_dir,
    dvc_executable,
    md5_file,
    run_command,
    scratch_dir,
    scratch_env,
)

# What a run must carry to be rebuilt (tags) and how its training params are named (params).
REQUIRED_TAGS = ("git_commit", "data.train.path", "data.train.md5", "data.holdout.path",
                 "data.holdout.md5", "model_sha256")  # fmt: skip
TRAIN_PARAM_PREFIX = "train."


class NotRebuildableError(Refusal, RuntimeError):
    """The run lacks what a rebuild needs (a tag, a commit, the data in the cache)."""


@dataclass(frozen=True)
class Rebuild:
    """The recorded run next to its rebuild."""

    run_id: str
    commit: str
    data_md5_recorded: dict[str, str]
    data_md5_rebuilt: dict[str, str | None]
    metrics_recorded: dict[str, float]
    metrics_rebuilt: dict[str, float]
    model_sha256_recorded: str
    model_sha256_rebuilt: str
    code_root: str  # where the rebuild imported ``labs`` from: the worktree
    worktree_inside_scratch: bool

    @property
    def identical(self) -> bool:
        return (
            self.data_md5_rebuilt == self.data_md5_recorded
            and self.metrics_rebuilt == self.metrics_recorded
            and self.model_sha256_rebuilt == self.model_sha256_recorded
            and self.worktree_inside_scratch
        )


def rebuild_run(run_id: str, source: Path, timeout_s: float = 300.0) -> Rebuild:
    """Rebuild run ``run_id`` from the repository at ``source`` (its objects and DVC cache are
    read; nothing in the checkout is written)."""
    import mlflow

    from labs.common.tracking import configure_tracking

    configure_tracking()
    run = mlflow.MlflowClient().get_run(run_id)
    tags, params = run.data.tags, run.data.params
    missing = [t for t in REQUIRED_TAGS if not tags.get(t)]
    if missing:
        raise NotRebuildableError(f"run {run_id} lacks the tags {missing}: it cannot be rebuilt")
    train_params = {
        k.removeprefix(TRAIN_PARAM_PREFIX): _param(v)
        for k, v in params.items()
        if k.startswith(TRAIN_PARAM_PREFIX)
    }
    roles = ("train", "holdout")
    paths = {role: tags[f"data.{role}.path"] for role in roles}
    recorded_md5 = {role: tags[f"data.{role}.md5"] for role in roles}
    recorded_metrics = {
        k.removeprefix("holdout_"): v
        for k, v in run.data.metrics.items()
        if k.startswith("holdout_")
    }
    with scratch_dir() as root:
        env = scratch_env(root)
        clone, code = root / "clone", root / "code"
        # A shared clone borrows the user's objects read-only; the worktree is added to the
        # clone, so the user's .git gains no worktree entry (not even for a moment).
        git = ["git", "clone", "--quiet", "--shared", "--no-checkout", str(source), str(clone)]
        run_command(git, root, env, 60)
        try:
            run_command(["git", "worktree", "add", "--quiet", "--detach", str(code),
                         tags["git_commit"]], clone, env, 60)  # fmt: skip
        except CommandError as err:
            raise NotRebuildableError(
                f"commit {tags['git_commit']} of run {run_id} is not in {source}"
            ) from err
        configure_dvc(code, dvc_cache_dir(source))
        try:
            run_command([dvc_executable(), "checkout", *paths.values()], code, env, timeout_s)
        except CommandError as err:
            raise NotRebuildableError(
                f"the data of commit {tags['git_commit'][:12]} is not in the DVC cache "
                f"{dvc_cache_dir(source)} (dvc pull it first): {err}"
            ) from err
        rebuilt_md5 = {role: md5_file(code / p) for role, p in paths.items()}
        # The commit's code, not this process's: a fresh interpreter, the worktree first on
        # the import path.
        env["PYTHONPATH"] = str(code)
        cmd = [sys.executable, "-m", "labs.reproducibility.experiment",
               "--train", paths["train"], "--holdout", paths["holdout"],
               "--params", json.dumps(train_params)]  # fmt: skip
        out = json.loads(run_command(cmd, code, env, timeout_s).strip().splitlines()[-1])
        return Rebuild(
            run_id=run_id,
            commit=tags["git_commit"],
            data_md5_recorded=recorded_md5,
            data_md5_rebuilt=rebuilt_md5,
            metrics_recorded=recorded_metrics,
            metrics_rebuilt={k: float(v) for k, v in out["metrics"].items()},
            model_sha256_recorded=tags["model_sha256"],
            model_sha256_rebuilt=out["model_sha256"],
            code_root=out["code_root"],
            worktree_inside_scratch=Path(out["code_root"]).resolve() == code.resolve(),
        )


def _param(text: str) -> Any:
    """An MLflow param (always a string) back to its value: JSON where it parses."""
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        return text


def main(argv: list[str] | None = None) -> int:
    from labs.common.paths import project_root

    args = sys.argv[1:] if argv is None else argv
    if len(args) != 1:
        print("usage: python -m labs.reproducibility.rebuild RUN_ID", file=sys.stderr)
        return 2
    try:
        result = rebuild_run(args[0], project_root())
    except Refusal as err:
        print(f"rebuild: refused: {err}", file=sys.stderr)
        return 2
    for field in ("data_md5", "metrics", "model_sha256"):
        recorded = getattr(result, f"{field}_recorded")
        rebuilt = getattr(result, f"{field}_rebuilt")
        print(f"{field:13} {'identical' if recorded == rebuilt else 'DIFFERENT'}: {rebuilt}")
    print(f"commit {result.commit}, code from {result.code_root}")
    return 0 if result.identical else 1


if __name__ == "__main__":
    sys.exit(main())
