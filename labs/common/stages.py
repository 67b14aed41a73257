"""The DVC pipeline's stages: ``python -m labs.common.stages <stage> [paths]``.

generate → prepare → train → evaluate. Each stage reads its own ``params.yaml`` section and
takes its paths as arguments (``dvc.yaml`` lists both), so DVC re-runs only what changed.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

import pandas as pd

from labs.common.params import load_params, params_for, require

BASELINE_EXPERIMENT = "baseline"
# Set to "off" where the stages' MLflow runs would go nowhere anyone reads: train and evaluate
# then write only their DVC outputs (model file, metrics, plots) — the same bytes — and skip
# MLflow's import and logging (~1.5 s a stage). The versioning lab's scratch clones do this.
TRACKING_SWITCH = "LABS_STAGE_TRACKING"


def stage_tracking() -> bool:
    """Whether train and evaluate log to MLflow (unless ``LABS_STAGE_TRACKING=off``)."""
    value = os.environ.get(TRACKING_SWITCH, "on").strip().lower()
    if value not in ("on", "off"):
        raise ValueError(f"{TRACKING_SWITCH} must be 'on' or 'off', got {value!r}")
    return value == "on"


def generate(out: Path) -> pd.DataFrame:
    """Draw the reference churn table (the immutable raw data)."""
    from labs.common.data import make_churn_data

    p = load_params("generate")
    frame = make_churn_data(
        int(require(p, "n_rows", "generate")), seed=int(require(p, "seed", "generate"))
    )
    out.parent.mkdir(parents=True, exist_ok=True)
    frame.to_csv(out, index=False)
    print(f"generate: {len(frame)} rows, churn rate {frame['churned'].mean():.3f} → {out}")
    return frame


def prepare(raw: Path, out_dir: Path) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Split raw data into a training set and a fixed, stratified holdout."""
    from sklearn.model_selection import train_test_split

    p = load_params("prepare")
    frame = pd.read_csv(raw)
    train, holdout = train_test_split(
        frame,
        test_size=float(require(p, "holdout_fraction", "prepare")),
        random_state=int(require(p, "seed", "prepare")),
        stratify=frame["churned"],
    )
    out_dir.mkdir(parents=True, exist_ok=True)
    train.to_csv(out_dir / "train.csv", index=False)
    holdout.to_csv(out_dir / "holdout.csv", index=False)
    print(f"prepare: {len(train)} train rows, {len(holdout)} holdout rows → {out_dir}")
    return train, holdout


def train(train_csv: Path, model_path: Path) -> str | None:
    """Fit the baseline, write it as a skops file, log it to MLflow and register it.

    The first registered version gets the ``champion`` alias; later versions wait for a
    promotion decision (the retraining flow), so re-running the pipeline never moves it.
    Returns the registered version (``None`` with tracking off: see :data:`TRACKING_SWITCH`).
    """
    from labs.common.model import TrainParams, train_model
    from labs.common.tracking import dump_model

    tracking = stage_tracking()
    params = params_for(TrainParams, "train")
    frame = pd.read_csv(train_csv)
    model = train_model(frame, params)
    sha = dump_model(model, model_path)
    if not tracking:
        print(f"train: {params.model_type} → {model_path} (not logged: {TRACKING_SWITCH}=off)")
        return None

    import mlflow
    from mlflow.models import infer_signature

    from labs.common.registration import register_version
    from labs.common.registry import CHAMPION, MODEL_NAME, SHA_TAG, alias_version, promote
    from labs.common.tracking import audit_log_path, start_run

    # Integer columns are declared as doubles so that a row with a missing value (NaN) still
    # matches the signature; range and schema checks are the validation gate's job.
    x = frame.drop(columns=["churned"]).head(50)
    x = x.astype({c: "float64" for c in x.select_dtypes("integer").columns})
    signature = infer_signature(x, model.predict_proba(x)[:, 1])
    tags = {
        "git_commit": _git_commit(),
        "data_md5": hashlib.md5(train_csv.read_bytes()).hexdigest(),
    }
    with start_run(BASELINE_EXPERIMENT, "train", vars(params)) as run:
        mlflow.set_tags({**tags, SHA_TAG: sha})
        client = mlflow.MlflowClient()
        version, _ = register_version(
            client,
            MODEL_NAME,
            model,
            experiment=BASELINE_EXPERIMENT,
            run_id=run.info.run_id,
            tags=tags,
            signature=signature,
        )
    # The first version becomes champion; later ones wait for a promotion decision (the
    # retraining flow), so re-running the pipeline never moves it.
    if alias_version(client, MODEL_NAME, CHAMPION) is None:
        promote(client, MODEL_NAME, version, reason="first baseline", audit_log=audit_log_path())
    print(
        f"train: {params.model_type}, run {run.info.run_id}, {MODEL_NAME} v{version} → {model_path}"
    )
    return version


def evaluate(model_path: Path, holdout_csv: Path, metrics_path: Path, plots_dir: Path) -> dict:
    """Holdout metrics (DVC metrics), a ROC curve (DVC plot + PNG), logged to the model's run."""
    from sklearn.metrics import roc_curve

    from labs.common.model import evaluate_model, split_xy
    from labs.common.plots import new_figure, save_figure, unit_interval
    from labs.common.tracking import load_model_file

    tracking = stage_tracking()
    p = load_params("evaluate")
    threshold = float(require(p, "threshold", "evaluate"))
    model = load_model_file(model_path)
    holdout = pd.read_csv(holdout_csv)
    metrics = evaluate_model(model, holdout, threshold)

    metrics_path.parent.mkdir(parents=True, exist_ok=True)
    metrics_path.write_text(
        json.dumps({k: round(v, 6) for k, v in metrics.items()}, indent=2) + "\n"
    )

    x, y = split_xy(holdout)
    fpr, tpr, _ = roc_curve(y, model.predict_proba(x)[:, 1])
    plots_dir.mkdir(parents=True, exist_ok=True)
    pd.DataFrame({"fpr": fpr.round(5), "tpr": tpr.round(5)}).to_csv(
        plots_dir / "roc.csv", index=False
    )
    fig, ax = new_figure(size=(4.5, 4.5))
    ax.plot(fpr, tpr, label=f"baseline (AUC {metrics['roc_auc']:.3f})")
    ax.plot([0, 1], [0, 1], ls="--", c="grey", label="chance")
    unit_interval(ax, axis="x", label="false positive rate")
    unit_interval(ax, label="true positive rate")
    ax.set_title("Holdout ROC curve")
    ax.legend(loc="lower right")
    save_figure(fig, plots_dir / "roc.png", dpi=100)

    if tracking:
        _attach_holdout_metrics(model_path, metrics, plots_dir / "roc.png")
    print("evaluate: " + ", ".join(f"{k}={v:.3f}" for k, v in metrics.items() if k != "n_rows"))
    return metrics


def _attach_holdout_metrics(model_path: Path, metrics: dict, plot: Path) -> None:
    """Log the holdout metrics to the registered version built from exactly this file."""
    import mlflow

    from labs.common.registration import find_version
    from labs.common.registry import MODEL_NAME
    from labs.common.tracking import configure_tracking, file_sha256

    configure_tracking()
    client = mlflow.MlflowClient()
    version = find_version(client, MODEL_NAME, file_sha256(model_path))
    if version is not None:
        with mlflow.start_run(run_id=client.get_model_version(MODEL_NAME, version).run_id):
            mlflow.log_metrics({f"holdout_{k}": v for k, v in metrics.items()})
            mlflow.log_artifact(str(plot))
        client.set_model_version_tag(
            MODEL_NAME, version, "holdout_roc_auc", f"{metrics['roc_auc']:.4f}"
        )


def _git_commit() -> str:
    try:
        out = subprocess.run(
            ["git", "rev-parse", "HEAD"], capture_output=True, text=True, check=True, timeout=10
        )
        return out.stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m labs.common.stages", description=__doc__)
    sub = parser.add_subparsers(dest="stage", required=True)
    g = sub.add_parser("generate")
    g.add_argument("--out", type=Path, required=True)
    pr = sub.add_parser("prepare")
    pr.add_argument("--raw", type=Path, required=True)
    pr.add_argument("--out-dir", type=Path, required=True)
    t = sub.add_parser("train")
    t.add_argument("--train", type=Path, required=True)
    t.add_argument("--model", type=Path, required=True)
    e = sub.add_parser("evaluate")
    e.add_argument("--model", type=Path, required=True)
    e.add_argument("--holdout", type=Path, required=True)
    e.add_argument("--metrics", type=Path, required=True)
    e.add_argument("--plots-dir", type=Path, required=True)
    args = parser.parse_args(argv)
    from labs.common.params import ParamsError

    try:
        return _run(args)
    except (ParamsError, ValueError, FileNotFoundError) as err:
        print(f"{args.stage}: error: {err}", file=sys.stderr)
        return 2


def _run(args: argparse.Namespace) -> int:
    if args.stage == "generate":
        generate(args.out)
    elif args.stage == "prepare":
        prepare(args.raw, args.out_dir)
    elif args.stage == "train":
        train(args.train, args.model)
    else:
        evaluate(args.model, args.holdout, args.metrics, args.plots_dir)
    return 0


if __name__ == "__main__":
    sys.exit(main())
