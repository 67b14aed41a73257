"""The lab's measurements, and the claims they decide (each from its numbers, never set by hand)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from labs.common.results import Claim
from labs.reproducibility.experiment import ExperimentResult
from labs.reproducibility.pipeline import ReproSteps
from labs.reproducibility.rebuild import REQUIRED_TAGS, Rebuild

if TYPE_CHECKING:
    from labs.reproducibility.params import ReproducibilityParams

# What the run must record, beyond the rebuild's tags: environment, platform, params, seed.
RECORDED = (*REQUIRED_TAGS, "git_dirty", "requirements_lock_sha256", "python", "platform",
            "machine", "blas", "version.scikit-learn", "version.numpy", "param.seed",
            "param.train.seed", "param.train.model_type")  # fmt: skip


@dataclass(frozen=True)
class Measurements:
    """Everything the lab measured, handed to the claims, the plot and the table."""

    first: ExperimentResult
    second: ExperimentResult
    other: ExperimentResult
    dots: dict[int, list[float]]  # BLAS thread count → repeated results
    blas: str
    seeding: dict[str, Any]
    forest: dict[str, Any]  # scikit-learn forest, n_jobs=1 vs n: fit_identical, predict_max_diff
    orders: list[dict[str, Any]]
    order_shas: dict[str, set[str]]
    sums: dict[str, Any]
    digest: dict[str, Any]
    tags: dict[str, str]
    recorded: dict[str, str]
    rebuild: Rebuild | str  # or why the rebuild was refused
    dvc: ReproSteps
    environment: dict[str, Any]  # the lock against the venv, pyproject.toml and uv's rebuild

    @property
    def dots_flat(self) -> list[float]:
        return [v for values in self.dots.values() for v in values]

    @property
    def distinct_dots(self) -> int:
        return len(set(self.dots_flat))


def make_claims(params: ReproducibilityParams, m: Measurements) -> list[Claim]:
    """The interview answer, claim by claim."""
    first, second, other = m.first, m.second, m.other
    unsorted = {tuple(o["unsorted"]) for o in m.orders}
    sorted_ = {tuple(o["sorted"]) for o in m.orders}
    missing = [f for f in RECORDED if not m.recorded.get(f)]
    pinned = [m.tags.get(f"data.{r}.pinned_by_dvc_lock") == "true" for r in ("train", "holdout")]
    d = m.dvc
    skipped = [s for s in d.stages if s not in d.first]
    return [
        Claim(
            "same_seed_same_bytes",
            f"Two trainings with seed {params.seed} give identical metrics and model bytes.",
            passed=first.metrics == second.metrics and first.model_sha256 == second.model_sha256,
            measured={
                "roc_auc_run_1": first.metrics["roc_auc"],
                "roc_auc_run_2": second.metrics["roc_auc"],
                "metrics_identical": first.metrics == second.metrics,
                "model_sha256_run_1": first.model_sha256[:16],
                "model_sha256_run_2": second.model_sha256[:16],
            },
        ),
        Claim(
            "other_seed_other_result",
            f"Seed {params.other_seed} changes them: the check detects a different result.",
            passed=other.model_sha256 != first.model_sha256
            and other.metrics["roc_auc"] != first.metrics["roc_auc"],
            measured={
                "roc_auc_other_seed": other.metrics["roc_auc"],
                "roc_auc_difference": other.metrics["roc_auc"] - first.metrics["roc_auc"],
                "model_sha256_other_seed": other.model_sha256[:16],
            },
        ),
        Claim(
            "blas_threads_change_bits",
            "The BLAS thread count changes a dot product's last bits; pinning it "
            "(threadpoolctl) makes the result repeat exactly.",
            passed=m.distinct_dots >= 2 and all(len(set(v)) == 1 for v in m.dots.values()),
            measured={f"dot_threads_{t}": v[0] for t, v in m.dots.items()}
            | {
                "max_abs_difference": max(m.dots_flat) - min(m.dots_flat),
                "distinct_across_thread_counts": m.distinct_dots,
                "distinct_within_a_pinned_count": max(len(set(v)) for v in m.dots.values()),
                "blas": m.blas,
            },
        ),
        Claim(
            "workers_ignore_the_global_seed",
            f"With n_jobs={params.n_jobs} worker processes, np.random.seed does not reach the "
            "workers: each repeat differs; seeds spawned per task repeat for any n_jobs. "
            "scikit-learn's forest fits the same trees for any n_jobs.",
            passed=m.seeding["distinct_global_in_process"] == 1
            and m.seeding["distinct_global_workers"] >= 2
            and m.seeding["distinct_spawned"] == 1
            and m.forest["fit_identical"],
            measured={
                "distinct_global_seed_in_process": m.seeding["distinct_global_in_process"],
                "distinct_global_seed_workers": m.seeding["distinct_global_workers"],
                "distinct_spawned_seeds_anywhere": m.seeding["distinct_spawned"],
                "forest_fit_identical": m.forest["fit_identical"],
                # not decided: thread completion order adds the trees' votes (last bits)
                "forest_predict_max_diff": m.forest["predict_max_diff"],
            },
        ),
        Claim(
            "set_order_depends_on_hash_seed",
            "Iterating a set of column names gives another order under another "
            "PYTHONHASHSEED, and another model file; sorted() gives one.",
            passed=len(unsorted) >= 2
            and len(sorted_) == 1
            and len(m.order_shas["unsorted"]) >= 2
            and len(m.order_shas["sorted"]) == 1,
            measured={
                "hash_seeds": len(m.orders),
                "distinct_orders_unsorted": len(unsorted),
                "distinct_orders_sorted": len(sorted_),
                "distinct_model_sha256_unsorted": len(m.order_shas["unsorted"]),
                "distinct_model_sha256_sorted": len(m.order_shas["sorted"]),
            },
        ),
        Claim(
            "summation_order_changes_sums",
            "Adding the same floats in another order changes the sum; math.fsum does not.",
            passed=m.sums["distinct_sum"] >= 2 and m.sums["distinct_fsum"] == 1,
            measured={
                k: m.sums[k]
                for k in (
                    "orders",
                    "distinct_sum",
                    "distinct_np_sum",
                    "distinct_fsum",
                    "relative_diff_sum",
                )
            },  # fmt: skip
        ),
        Claim(
            "run_records_every_input",
            "The MLflow run records commit and dirty flag, the lock file's sha256, the data's "
            "md5 (pinned by dvc.lock), params, seed and platform.",
            passed=not missing and all(pinned) and len(m.recorded.get("git_commit", "")) == 40,
            measured={
                "fields_checked": len(RECORDED),
                "fields_missing": missing,
                "git_commit": m.recorded.get("git_commit", "")[:12],
                "git_dirty": m.recorded.get("git_dirty"),
                "data_pinned_by_dvc_lock": sum(pinned),
                "requirements_lock_sha256": m.recorded.get("requirements_lock_sha256", "")[:16],
            },
        ),
        Claim(
            "mlflow_digest_sees_first_rows_only",
            f"MLflow's dataset digest is the same for two frames that differ only after row "
            f"{params.digest_changed_from:,}; their md5 differs.",
            passed=m.digest["digest_original"] == m.digest["digest_changed_late"]
            and m.digest["md5_original"] != m.digest["md5_changed_late"]
            and m.digest["digest_changed_row_0"] != m.digest["digest_original"],
            measured=dict(m.digest),
        ),
        rebuilt_claim(m.rebuild),
        Claim(
            "param_change_reruns_dependents_only",
            f"After `{d.changed_param}`, dvc repro runs exactly the stages that depend on it.",
            passed=d.first == d.expected and bool(d.expected),
            measured={
                "stages": len(d.stages),
                "ran": d.first,
                "expected": d.expected,
                "skipped": len(skipped),
                "outputs_restored": d.outputs_restored,
            },
        ),
        Claim(
            "second_repro_is_a_noop",
            "Running dvc repro again runs no stage and changes no byte of dvc.lock or outputs.",
            passed=d.second == [] and d.second_changed_nothing,
            measured={"ran": len(d.second), "bytes_unchanged": d.second_changed_nothing},
        ),
        lock_claim(m.environment),
    ]


REBUILT = (
    "From the run id alone: the commit's code in a git worktree plus its data (dvc checkout) "
    "re-train to the same metrics and model sha256."
)


def rebuilt_claim(r: Rebuild | str) -> Claim:
    """The rebuild against the recorded run, or the reason it was refused (✗)."""
    if isinstance(r, str):
        return Claim("rebuilt_from_run_id", REBUILT, passed=False, measured={"refused": r})
    return Claim(
        "rebuilt_from_run_id",
        REBUILT,
        passed=r.identical,
        measured={
            "commit": r.commit[:12],
            "data_identical": r.data_md5_rebuilt == r.data_md5_recorded,
            "metrics_identical": r.metrics_rebuilt == r.metrics_recorded,
            "roc_auc_recorded": r.metrics_recorded.get("roc_auc"),
            "roc_auc_rebuilt": r.metrics_rebuilt.get("roc_auc"),
            "model_sha256_identical": r.model_sha256_rebuilt == r.model_sha256_recorded,
            "code_from_worktree": r.worktree_inside_scratch,
        },
    )


LOCK = (
    "requirements.lock pins every requirement with == and sha256 hashes, satisfies "
    "pyproject.toml, and is exactly what the venv holds; uv rebuilds the same venv from it "
    "alone, offline (a fresh venv, uv pip sync --require-hashes): same packages, same versions."
)


def lock_claim(env: dict[str, Any]) -> Claim:
    """✗ when the lock or the venv is wrong; *not checked* (✗) when uv's rebuild did not run."""
    venv, rebuild = env["venv"], env["rebuild"]
    defects = {
        "unpinned": len(venv["unpinned"]),
        "without_sha256": len(venv["unhashed"]),
        "version_mismatches": len(venv["mismatched"]),
        "pyproject_unmet": len(env["pyproject_unmet"]),
    }
    measured: dict[str, Any] = {
        "requirements": venv["requirements"],
        "pinned_for_this_python": venv["packages_pinned"],
        **defects,
        "lock_sha256": env["sha256"][:16],
        "uv": rebuild["uv"],
        "uv_rebuilt_packages": rebuild.get("packages_rebuilt"),
        "venv_packages": rebuild.get("packages_in_venv"),
        "uv_rebuild_identical": rebuild.get("identical"),
    }
    examples = venv["unpinned"] + venv["unhashed"] + venv["mismatched"] + env["pyproject_unmet"]
    if examples:
        measured["first_defects"] = examples[:3]
    if rebuild["error"]:
        measured["uv_error"] = rebuild["error"]
    if not any(defects.values()) and not rebuild["ran"]:
        # The lock looks right, but the rebuild that shows it is enough did not run.
        return Claim.not_checked("lock_file_reproducible", LOCK, rebuild["error"], **measured)
    passed = not any(defects.values()) and bool(rebuild.get("identical"))
    return Claim("lock_file_reproducible", LOCK, passed=passed, measured=measured)
