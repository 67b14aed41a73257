"""MLflow set-up as functions (nothing happens at import) and safe model files.

- The store is SQLite ``mlflow.db`` at the repo root with artifacts in ``mlruns/`` beside it;
  ``MLFLOW_TRACKING_URI`` overrides it everywhere (an MLflow server for the scale-out path).
- Telemetry of MLflow, Prefect and DVC is switched off before anything is imported.
- Models are written with skops, never pickle. Loading checks that the file is skops and that
  every type it needs is on an allowlist of *exact* type names, then loads with exactly those
  types trusted. (A module prefix such as ``numpy.`` is never trusted: skops calls the named
  type with the file's arguments, so a prefix lets a crafted file reach
  ``numpy.testing._private.utils.runstring``, i.e. ``exec``.)
- A registered version records the sha256 of its logged model file (``artifact_sha256``);
  loading a registered model verifies the downloaded bytes against it before deserialising.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import os
import re
import zipfile
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote, urlparse

from labs.common.errors import Refusal
from labs.common.paths import project_root

if TYPE_CHECKING:  # heavy imports stay out of ``import labs.common``
    import mlflow

OFFLINE_ENV = {
    "DO_NOT_TRACK": "true",
    "MLFLOW_DISABLE_TELEMETRY": "true",
    "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
    "DVC_NO_ANALYTICS": "1",
    "MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR": "false",
}

# The exact non-default types skops reports (``skops.io.get_untrusted_types``) for the models
# this project writes: the churn pipeline as logistic regression needs none, as a random
# forest one. Anything else in a model file is refused, by name. Extend only with exact names
# reported for a model the project itself wrote. ``numpy.dtype``: a fitted SimpleImputer
# (lab features) stores its input dtype; skops rebuilds it from an empty ``.npy`` array
# (``DTypeNode``, loaded without pickle), never by calling a type with the file's arguments.
ALLOWED_TYPES: frozenset[str] = frozenset({"sklearn.tree._tree.Tree", "numpy.dtype"})
# Version tag: sha256 of the logged model file's bytes, checked on every registered load.
ARTIFACT_SHA_TAG = "artifact_sha256"

# What a logged model needs at serving time, pinned to what is installed (MLflow would
# otherwise infer it in a subprocess, ~10 s per model).
_MODEL_REQUIREMENTS = ("scikit-learn", "skops", "numpy", "pandas", "scipy")


# skops object ids: ``"__id__": 1400…`` in the schema and ``"file": "1400….npy"`` members.
_SKOPS_ID = re.compile(r'("__id__": |"file": ")(\d+)((?:\.npy")?)')


class UntrustedModelError(Refusal, RuntimeError):
    """A model file is not skops, needs a type outside :data:`ALLOWED_TYPES`, or its bytes
    differ from the hash recorded at registration."""


def offline_env() -> None:
    """Switch telemetry off for this process and its children (keeps values already set)."""
    for key, value in OFFLINE_ENV.items():
        os.environ.setdefault(key, value)


def tracking_uri() -> str:
    """``$MLFLOW_TRACKING_URI`` or the project's SQLite store."""
    return os.environ.get("MLFLOW_TRACKING_URI") or f"sqlite:///{project_root() / 'mlflow.db'}"


def artifact_location(uri: str | None = None) -> str | None:
    """For a local SQLite store: ``mlruns/`` beside the database. For a server: its default."""
    uri = uri or tracking_uri()
    parsed = urlparse(uri)
    if parsed.scheme != "sqlite":
        return None
    db = Path(unquote(uri[len("sqlite:///") :]))
    return (db.parent / "mlruns").resolve().as_uri()


def audit_log_path() -> Path:
    """The registry's audit log of alias moves: beside a SQLite store, else at the repo root."""
    uri = tracking_uri()
    if urlparse(uri).scheme == "sqlite":
        return Path(unquote(uri[len("sqlite:///") :])).parent / "registry-audit.jsonl"
    return project_root() / "registry-audit.jsonl"


def configure_tracking() -> str:
    """Point MLflow at the project's store (or ``$MLFLOW_TRACKING_URI``); return the URI."""
    offline_env()
    import mlflow

    uri = tracking_uri()
    mlflow.set_tracking_uri(uri)
    mlflow.set_registry_uri(uri)
    return uri


# The MLflow UI opens an experiment in the view this tag names; without it, MLflow 3 may
# open the GenAI view with an assistant panel. Our labs are classic model development.
EXPERIMENT_KIND = {"mlflow.experimentKind": "custom_model_development"}


def get_or_create_experiment(name: str) -> str:
    """The id of experiment ``name``, created with the project's artifact location if new,
    and tagged to open in the MLflow UI's classic (model development) view."""
    import mlflow

    configure_tracking()
    experiment = mlflow.get_experiment_by_name(name)
    if experiment is not None:
        if experiment.tags.get("mlflow.experimentKind") != EXPERIMENT_KIND["mlflow.experimentKind"]:
            mlflow.MlflowClient().set_experiment_tag(
                experiment.experiment_id, *next(iter(EXPERIMENT_KIND.items()))
            )
        return experiment.experiment_id
    try:
        return mlflow.create_experiment(
            name, artifact_location=artifact_location(), tags=EXPERIMENT_KIND
        )
    except mlflow.exceptions.MlflowException:  # created meanwhile by another process
        experiment = mlflow.get_experiment_by_name(name)
        if experiment is None:
            raise
        return experiment.experiment_id


@contextlib.contextmanager
def start_run(
    experiment: str, run_name: str, params: Mapping[str, Any] | None = None
) -> Iterator[mlflow.ActiveRun]:
    """An MLflow run in ``experiment`` with ``params`` logged. It ends FINISHED, FAILED on an
    exception, KILLED on Ctrl-C or SIGTERM (:func:`labs.common.results.lab_main` turns SIGTERM
    into an interrupt) — never left RUNNING by a run that stopped."""
    import mlflow

    experiment_id = get_or_create_experiment(experiment)
    run = mlflow.start_run(experiment_id=experiment_id, run_name=run_name)
    try:
        if params:
            mlflow.log_params({k: _short(v) for k, v in params.items()})
        yield run
    except (KeyboardInterrupt, SystemExit):
        mlflow.end_run("KILLED")
        raise
    except BaseException:
        mlflow.end_run("FAILED")
        raise
    mlflow.end_run("FINISHED")


@dataclass
class RunRecord:
    """A run to log in one go: params, metrics, artifact files and nested runs (plain data, so
    a worker process can log it while the lab computes)."""

    name: str
    params: dict[str, Any] = field(default_factory=dict)
    metrics: dict[str, float] = field(default_factory=dict)
    artifacts: list[str] = field(default_factory=list)
    children: list[RunRecord] = field(default_factory=list)


def log_run_record(experiment: str, record: RunRecord) -> str:
    """Log ``record`` and its nested runs into ``experiment``; return the top run's id."""
    import mlflow

    with start_run(experiment, record.name, record.params) as top:
        _log_body(record)
        for child in record.children:
            # nested runs do not inherit the parent's experiment: name it
            with mlflow.start_run(
                run_name=child.name, nested=True, experiment_id=top.info.experiment_id
            ):
                if child.params:
                    mlflow.log_params({k: _short(v) for k, v in child.params.items()})
                _log_body(child)
        return top.info.run_id


def warm_up_tracking() -> str:
    """Import MLflow and open its store (~6 s with SQLite), e.g. in a worker process that will
    call :func:`log_run_record` later; MLflow keeps the engine for the process."""
    configure_tracking()
    import mlflow

    mlflow.MlflowClient().search_experiments(max_results=1)
    return tracking_uri()


def _log_body(record: RunRecord) -> None:
    import mlflow

    if record.metrics:
        mlflow.log_metrics(record.metrics)
    for path in record.artifacts:
        if str(path).endswith(".html"):
            from labs.common.report_html import self_contained_html

            # MLflow's viewer shows an HTML file alone: embed a report's shared bundle again
            if (html := self_contained_html(Path(path))) is not None:
                mlflow.log_text(html, Path(path).name)
                continue
        mlflow.log_artifact(path)


def model_requirements() -> list[str]:
    """Pinned pip requirements of a logged model, from the installed versions."""
    return [f"{name}=={metadata.version(name)}" for name in _MODEL_REQUIREMENTS]


def trusted_types_for(model: Any) -> list[str]:
    """The non-default types skops needs for ``model``; refuses any outside the allowlist."""
    import skops.io

    needed = skops.io.get_untrusted_types(data=skops.io.dumps(model))
    return _checked_types(needed, source=type(model).__name__)


def log_sklearn_model(
    model: Any,
    name: str = "model",
    registered_model_name: str | None = None,
    signature: Any = None,
    run_id: str | None = None,
) -> Any:
    """Log ``model`` (skops, explicit trusted types and requirements) into the active run, or
    into run ``run_id`` without making it active (nor ending it: its owner does)."""
    import logging

    import mlflow.sklearn

    # uv venvs carry no pip; MLflow warns about that while writing conda.yaml, which we do not use.
    logging.getLogger("mlflow.utils.environment").setLevel(logging.ERROR)
    info = mlflow.sklearn.log_model(
        model,
        name=name,
        serialization_format="skops",
        skops_trusted_types=trusted_types_for(model),
        pip_requirements=model_requirements(),
        registered_model_name=registered_model_name,
        signature=signature,
        run_id=run_id,
    )
    if registered_model_name is not None:
        sha = file_sha256(logged_model_file(info.model_uri))
        mlflow.MlflowClient().set_model_version_tag(
            registered_model_name, str(info.registered_model_version), ARTIFACT_SHA_TAG, sha
        )
    return info


def logged_model_file(model_uri: str) -> Path:
    """Download a logged sklearn model and return its skops file; refuse any other format."""
    import mlflow.artifacts
    import yaml

    configure_tracking()
    local = Path(mlflow.artifacts.download_artifacts(artifact_uri=model_uri))
    flavor = yaml.safe_load((local / "MLmodel").read_text())["flavors"].get("sklearn")
    if not flavor or flavor.get("serialization_format") != "skops":
        fmt = flavor.get("serialization_format") if flavor else "no sklearn flavor"
        raise UntrustedModelError(f"{model_uri} is saved as {fmt!r}; only skops models are loaded")
    return local / flavor["pickled_model"]


_REGISTERED = re.compile(r"^models:/(?P<name>[^/@]+)(?:/(?P<version>\d+)|@(?P<alias>[\w-]+))$")


def load_sklearn_model(model_uri: str) -> Any:
    """Load a logged sklearn model: skops only, exact allowlisted types, and for a registered
    version (``models:/name/3`` or ``models:/name@alias``) bytes that match the sha256
    recorded at registration — checked before anything is deserialised.

    MLflow itself refuses to deserialise any sklearn model unless
    ``MLFLOW_ALLOW_PICKLE_DESERIALIZATION=true``, because the trusted-type list is read from
    the model's own metadata. We check the types against our allowlist instead, and load the
    skops file directly, so no process-wide switch is needed.
    """
    registered = _REGISTERED.match(model_uri)
    expected = None
    if registered:
        import mlflow

        configure_tracking()
        client = mlflow.MlflowClient()
        name = registered["name"]
        if registered["alias"]:  # pin the version first: the alias may move while we download
            mv = client.get_model_version_by_alias(name, registered["alias"])
        else:
            mv = client.get_model_version(name, registered["version"])
        model_uri = f"models:/{name}/{mv.version}"
        expected = mv.tags.get(ARTIFACT_SHA_TAG)
        if not expected:
            raise UntrustedModelError(
                f"{model_uri} has no recorded {ARTIFACT_SHA_TAG}, so its bytes cannot be "
                "verified; register it through the project (registration.register_version)"
            )
    path = logged_model_file(model_uri)
    if expected is not None:
        actual = file_sha256(path)
        if actual != expected:
            raise UntrustedModelError(
                f"{model_uri}: model file sha256 {actual} differs from the registered "
                f"{expected}; refusing to load a changed model"
            )
    return load_model_file(path)


def model_bytes(model: Any) -> bytes:
    """``model`` as a skops file's bytes, reproducible: the same model gives the same bytes.

    skops names objects by their memory address and stamps zip members with the current time,
    so the same model would give a new file (and a new DVC hash) on every run. We renumber the
    addresses in order of first appearance and use a fixed timestamp. A model needing a type
    outside the allowlist is refused: we do not write what we would refuse to read.
    """
    import skops.io

    raw = skops.io.dumps(model)
    _checked_types(skops.io.get_untrusted_types(data=raw), source=type(model).__name__)
    source = zipfile.ZipFile(io.BytesIO(raw))
    schema = source.read("schema.json").decode()
    ids: dict[str, str] = {}
    for match in _SKOPS_ID.finditer(schema):
        ids.setdefault(match.group(2), str(len(ids) + 1))

    def renumber(text: str) -> str:
        return _SKOPS_ID.sub(lambda m: m.group(1) + ids[m.group(2)] + m.group(3), text)

    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as target:
        for info in sorted(source.infolist(), key=lambda i: renumber(f'"file": "{i.filename}"')):
            name = renumber(f'"file": "{info.filename}"')[len('"file": "') : -1]
            data = source.read(info)
            if info.filename == "schema.json":
                data = renumber(schema).encode()
            fixed = zipfile.ZipInfo(name, date_time=(1980, 1, 1, 0, 0, 0))
            fixed.compress_type = info.compress_type
            target.writestr(fixed, data)
    return buffer.getvalue()


def model_sha256(model: Any) -> str:
    """The sha256 of :func:`model_bytes` — what the ``model_sha256`` lineage tag records."""
    return hashlib.sha256(model_bytes(model)).hexdigest()


def dump_model(model: Any, path: Path) -> str:
    """Write ``model`` as a reproducible skops file (:func:`model_bytes`); return its sha256."""
    data = model_bytes(model)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return hashlib.sha256(data).hexdigest()


def load_model_file(path: Path) -> Any:
    """Load a skops model file, trusting only the allowlisted types it needs."""
    import skops.io

    trusted = _checked_types(skops.io.get_untrusted_types(file=path), source=str(path))
    return skops.io.load(path, trusted=trusted)


def file_sha256(path: Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def _checked_types(types: list[str], source: str) -> list[str]:
    refused = sorted(t for t in types if t not in ALLOWED_TYPES)
    if refused:
        raise UntrustedModelError(
            f"{source} needs types that are not on the allowlist of exact type names "
            f"{sorted(ALLOWED_TYPES)}: {refused}; nothing from it was loaded"
        )
    return list(types)


def _short(value: Any) -> str:
    text = str(value)
    return text if len(text) <= 500 else text[:497] + "..."
