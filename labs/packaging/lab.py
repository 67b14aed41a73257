"""Packaging one trained model every way, measured side by side.

The churn pipeline (scaling, one-hot encoding, logistic regression) is trained once, then
packaged as a pickle (joblib), a skops file, an ONNX graph and an MLflow model. A fresh
process loads each one — a new server or a Lambda cold start pays exactly that — and scores
one row and a batch; every package's predictions are compared with the in-memory model's.

Then the same model is delivered three ways: behind the project's REST serving app, as a
serverless ``handler(event, context)`` (mangum around the same FastAPI app, cold vs warm, skops
vs ONNX), and as a container — the build context ``mlflow models generate-dockerfile`` writes,
inspected, next to the project's own Dockerfile rendered from the lock file.

Safety is measured too: a pickle carrying a harmless planted payload runs it at load, the same
intent in a skops file is refused by the project's exact-type allowlist, and an ONNX file has
nowhere to put code.
"""

from __future__ import annotations

import contextlib
import json
import shutil
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

import labs
from labs.common.catalogue import topic
from labs.common.data import CATEGORICAL_FEATURES, FEATURES, make_churn_data
from labs.common.model import TrainParams, train_model
from labs.common.params import check_at_least
from labs.common.results import LabResult, artifact_path, claim_metrics
from labs.packaging import formats as F
from labs.packaging import handler, probe
from labs.packaging.claims import make_claims
from labs.packaging.container import check_dockerfile, generate_mlflow_context, render_dockerfile
from labs.packaging.measure import (
    directory_bytes,
    measure_rest,
    onnx_in_process,
    parity,
    run_probes,
)
from labs.packaging.report import format_table, package_rows, plot_packages

QUESTION = topic("packaging").question
EXPERIMENT = topic("packaging").experiment
REPO = Path(labs.__file__).resolve().parents[1]  # where the code and the lock file live
COMMITTED_DOCKERFILE = Path(__file__).with_name("Dockerfile")


@dataclass(frozen=True)
class PackagingParams:
    """Parameters of the packaging lab (``params.yaml`` → ``packaging``)."""

    seed: int = 7
    train_rows: int = 4000
    parity_rows: int = 3000
    batch_rows: int = 1000
    one_row_repeats: int = 30
    batch_repeats: int = 5
    forest_trees: int = 50
    onnx_linear_tolerance: float = 1e-5
    tree_flip_share_limit: float = 0.01
    probe_timeout_s: float = 120.0
    parallel_probes: int = 1

    def __post_init__(self) -> None:
        check_at_least(
            self,
            "packaging",
            {
                "train_rows": 200,
                "parity_rows": 100,
                "batch_rows": 2,
                "one_row_repeats": 3,
                "batch_repeats": 1,
                "forest_trees": 2,
                "parallel_probes": 1,
            },
        )
        if self.batch_rows > min(self.parity_rows, 1000):
            raise ValueError("packaging.batch_rows must be <= parity_rows and <= 1000 (API limit)")
        if not 0 < self.onnx_linear_tolerance < 1:
            raise ValueError("packaging.onnx_linear_tolerance must be in (0, 1)")
        if not 0 < self.tree_flip_share_limit < 1:
            raise ValueError("packaging.tree_flip_share_limit must be in (0, 1)")
        if self.probe_timeout_s <= 0:
            raise ValueError("packaging.probe_timeout_s must be > 0")


def run(
    params: PackagingParams,
    out_dir: Path,
    echo: Callable[[str], None] = lambda _: None,
    *,
    onnx_writer: Callable[[Any, Path], Path] = F.write_onnx,
    onnx_loader: Callable[..., Any] = probe.load_onnx,
    skops_loader: Callable[..., Any] = probe.load_skops,
    pickle_planter: Callable[[Any, Path, Path], Path] = F.write_planted_pickle,
    lambda_handler: Callable[..., Any] = handler.handler,
    served_model: Callable[[Any, PackagingParams], Any] = F.the_artefact,
    dockerfile: Callable[[str], str] = render_dockerfile,
) -> LabResult:
    """Train once, package every way, measure each package cold and warm, check safety.

    The keyword arguments are the parts the lab demonstrates (the counterfactuals replace
    them): the ONNX export, the loaders the fresh processes use, the planted pickle, the
    Lambda handler, what the REST app is given to serve, and the Dockerfile's renderer."""
    import mlflow

    from labs.common.tracking import log_sklearn_model, start_run

    out_dir.mkdir(parents=True, exist_ok=True)
    work = out_dir / "packages"
    shutil.rmtree(work, ignore_errors=True)  # old markers would fake a payload run
    work.mkdir()

    # --- one model, and the rows every package must score the same ---------------------
    train = make_churn_data(params.train_rows, seed=params.seed)
    evaluation = make_churn_data(params.parity_rows, seed=params.seed + 1)
    echo(f"Training the churn pipeline on {len(train)} customers (logistic regression) …")
    model = train_model(train, TrainParams(seed=params.seed))
    columns = F.columns_of(evaluation)
    reference = model.predict_proba(F.plain_frame(columns))[:, 1]
    np.savez(work / "rows.npz", **columns)
    bodies = _request_bodies(evaluation, params.batch_rows, work)

    echo("Writing it as pickle (joblib), skops, ONNX and an MLflow model, plus planted files …")
    paths = {
        F.PICKLE: F.write_pickle(model, work / F.FILE_NAMES[F.PICKLE]),
        F.SKOPS: F.write_skops(model, work / F.FILE_NAMES[F.SKOPS]),
        F.ONNX: onnx_writer(model, work / F.FILE_NAMES[F.ONNX]),
        F.PYFUNC: F.write_pyfunc(model, work / "mlflow-model", evaluation.head(20)),
    }
    planted_dir = work / "planted"
    planted_dir.mkdir()
    planted = {
        F.PICKLE: pickle_planter(model, planted_dir / "model.joblib", planted_dir / "pickle.ran"),
        F.SKOPS: F.write_planted_skops(
            model, planted_dir / "model.skops", planted_dir / "skops.ran"
        ),
        F.ONNX: F.write_planted_onnx(model, planted_dir / "model.onnx", planted_dir / "onnx.ran"),
    }
    markers = {F.PICKLE: "pickle.ran", F.SKOPS: "skops.ran", F.ONNX: "onnx.ran"}

    # --- each format, and the handler with each artefact, in a fresh process --------------
    specs: dict[str, dict[str, Any]] = {}
    for fmt in F.FORMATS:
        specs[fmt] = {
            "mode": "format",
            "format": fmt,
            "path": str(paths[fmt]),
            "features": list(FEATURES),
            "data": str(work / "rows.npz"),
            "batch_rows": params.batch_rows,
            "one_row_repeats": params.one_row_repeats,
            "batch_repeats": params.batch_repeats,
            "out": str(work / f"proba-{fmt.replace('/', '-')}.npy"),
            "loaders": {F.ONNX: _named(onnx_loader), F.SKOPS: _named(skops_loader)},
        }
        if fmt in planted:
            specs[fmt]["planted"] = {
                "path": str(planted[fmt]),
                "marker": str(planted_dir / markers[fmt]),
                "trust_all_marker": str(planted_dir / "skops-trust-all.ran"),
            }
    # serverless: the serving app behind a Lambda handler, cold first call, then warm calls
    for kind, artefact in (("sklearn", paths[F.SKOPS]), ("onnx", paths[F.ONNX])):
        specs[f"lambda-{kind}"] = {
            "mode": "serverless",
            "handler": _named(lambda_handler),
            "kind": kind,
            "path": str(artefact),
            "log": str(work / f"lambda-{kind}.sqlite"),
            "one_row_body": str(bodies["one"]),
            "batch_body": str(bodies["batch"]),
            "one_row_repeats": params.one_row_repeats,
            "batch_repeats": params.batch_repeats,
        }
    extra: dict[str, Any] = {}

    def meanwhile() -> None:  # work of this process, done while probes run (parallel only)
        extra["forest"] = _forest_parity(params, train, columns, work, echo, onnx_writer)
        extra["container"] = _containers(paths[F.PYFUNC], work, out_dir, echo, dockerfile)

    with (
        start_run(EXPERIMENT, "packaging-lab", asdict(params)) as mlflow_run,
        contextlib.ExitStack() as stack,
    ):
        echo("Logging the model to MLflow (the REST app serves it from there) …")
        info = log_sklearn_model(served_model(model, params), name="model")
        overlap = params.parallel_probes > 1
        launched = time.perf_counter()
        if overlap:  # the server warms up beside the probes; its start is then not cold
            server = stack.enter_context(_rest_server(info.model_uri, work))
        echo(
            f"{len(specs)} fresh processes ({params.parallel_probes} at a time): each loads one "
            f"package, scores 1 row, {params.batch_rows} rows and all rows; the Lambda handler "
            "with skops and with ONNX, cold then warm …"
        )
        results = run_probes(
            specs, params.probe_timeout_s, params.parallel_probes, meanwhile if overlap else None
        )
        if not overlap:
            meanwhile()
            launched = time.perf_counter()
            server = stack.enter_context(_rest_server(info.model_uri, work))
        probes = {fmt: results[fmt] for fmt in F.FORMATS}
        for fmt in F.FORMATS:
            probes[fmt]["size_bytes"] = directory_bytes(paths[fmt])
            probes[fmt]["parity"] = parity(reference, np.load(specs[fmt]["out"]))
        probes[F.ONNX]["planted"]["surface"] = F.onnx_code_surface(planted[F.ONNX])
        handlers = {kind: results[f"lambda-{kind}"] for kind in ("sklearn", "onnx")}
        for result in handlers.values():
            result["parity"] = parity(reference[: params.batch_rows], np.array(result.pop("proba")))

        # --- REST: the project's serving app, same model from the MLflow run ----------------
        echo("Serving the model from MLflow with the project's REST app …")
        rest = measure_rest(
            server,
            launched,
            bodies["one"].read_text(),
            bodies["batch"].read_text(),
            (params.one_row_repeats, params.batch_repeats),
        )
        rest["parity"] = parity(reference[: params.batch_rows], np.array(rest.pop("proba")))
        rest["started_beside_probes"] = overlap

        forest_parity, container = extra["forest"], extra["container"]
        rows = package_rows(probes, handlers, rest, forest_parity, params)
        claims = make_claims(params, probes, handlers, rest, forest_parity, container)
        echo("")
        echo(format_table(rows))
        echo("")
        table_md = out_dir / "packages.md"
        table_md.write_text(format_table(rows, markdown=True) + "\n")
        measurements = out_dir / "measurements.json"
        measurements.write_text(
            json.dumps(
                {"probes": probes, "handlers": handlers, "rest": rest, "forest_onnx": forest_parity,
                 "container": container}, indent=1, default=str,
            ) + "\n"
        )  # fmt: skip
        files = [
            plot_packages(rows, out_dir / "packages.png"),
            table_md,
            measurements,
            out_dir / "Dockerfile",
        ]
        mlflow.log_metrics(claim_metrics(claims))
        for f in files:
            mlflow.log_artifact(str(f))
        run_id = mlflow_run.info.run_id

    return LabResult(
        lab="packaging",
        question=QUESTION,
        claims=claims,
        artifacts=[artifact_path(f) for f in files],
        mlflow={"experiment": EXPERIMENT, "run_id": run_id, "model_uri": info.model_uri},
    )


def _rest_server(model_uri: str, work: Path) -> Any:
    """The project's serving app in its own process group (stopped when the run ends)."""
    from labs.common.serving.server import serve_in_background

    return serve_in_background(
        model_uri,
        log_path=work / "rest-predictions.sqlite",
        server_log=work / "rest-server.log",
        wait=False,
    )


def _named(part: Callable[..., Any]) -> str:
    """``module:function``: how a part crosses into a fresh measuring process."""
    return f"{part.__module__}:{part.__name__}"


def _forest_parity(
    params: PackagingParams,
    train: Any,
    columns: dict[str, Any],
    work: Path,
    echo: Any,
    onnx_writer: Callable[[Any, Path], Path],
) -> dict[str, Any]:
    """A random forest through ONNX: float32 inputs against float64 split thresholds."""
    echo(f"Random forest ({params.forest_trees} trees) through ONNX: float32 parity …")
    forest = train_model(
        train,
        TrainParams(model_type="random_forest", n_estimators=params.forest_trees, seed=params.seed),
    )
    forest_path = onnx_writer(forest, work / "forest.onnx")
    result = parity(
        forest.predict_proba(F.plain_frame(columns))[:, 1],
        onnx_in_process(forest, forest_path, columns),
    )
    result["size_bytes"] = forest_path.stat().st_size
    return result


def _containers(
    pyfunc_dir: Path, work: Path, out_dir: Path, echo: Any, dockerfile: Callable[[str], str]
) -> dict[str, Any]:
    """MLflow's generated build context and the project's Dockerfile, both checked."""
    echo("mlflow models generate-dockerfile (no Docker needed) and the project's Dockerfile …")
    context = generate_mlflow_context(pyfunc_dir, work / "mlflow-docker")
    lock = (REPO / "requirements.lock").read_text()
    ours = dockerfile(lock)
    (out_dir / "Dockerfile").write_text(ours)
    return {
        "mlflow": {**check_dockerfile(context.pop("dockerfile"), lock), **context},
        "ours": check_dockerfile(ours, lock),
        "committed_matches_lock": COMMITTED_DOCKERFILE.exists()
        and COMMITTED_DOCKERFILE.read_text() == ours,
    }


def _request_bodies(evaluation: Any, batch_rows: int, work: Path) -> dict[str, Path]:
    """``POST /predict`` bodies: the first customer, and the first ``batch_rows``."""
    records = (
        evaluation[list(FEATURES)].astype({c: str for c in CATEGORICAL_FEATURES}).to_dict("records")
    )
    records = [{k: (v.item() if hasattr(v, "item") else v) for k, v in r.items()} for r in records]
    out = {"one": work / "one-row.json", "batch": work / "batch.json"}
    out["one"].write_text(json.dumps({"rows": records[:1]}))
    out["batch"].write_text(json.dumps({"rows": records[:batch_rows]}))
    return out
