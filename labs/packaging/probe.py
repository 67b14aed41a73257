"""A fresh process that loads one package and measures it: ``python -m labs.packaging.probe
'<json spec>'`` prints one JSON line. Only the standard library is imported before the clock
starts, so *load* is what a new serving process pays for this artefact: importing the
libraries it needs and reading the file.

Modes (``spec["mode"]``):
- ``format`` — load ``path`` as ``format``; time one-row and batch predictions; write the
  probabilities of every row to ``out`` (parity is checked by the lab); then, if given, load
  the planted file of the same format and report whether its payload ran (marker file).
- ``serverless`` — call :func:`labs.packaging.handler.handler` with API Gateway events:
  the first call (cold, the app is built) and warm calls after it.
"""

from __future__ import annotations

import json
import statistics
import sys
import time
from pathlib import Path
from typing import Any


def main(argv: list[str]) -> int:
    spec = json.loads(argv[0])
    start = time.perf_counter()
    result = (
        measure_format(spec, start) if spec["mode"] == "format" else measure_handler(spec, start)
    )
    print(json.dumps(result), flush=True)
    return 0


# --- formats ----------------------------------------------------------------------------------


def _loader(fmt: str, path: str, features: list[str], loaders: dict[str, str]) -> Any:
    """Import what ``fmt`` needs, load ``path``, return ``(prepare, predict)``: columns → the
    model's input, input → p(churn). ``loaders`` may name another loader for a format
    (``module:function``)."""
    if fmt in loaders:
        return resolve(loaders[fmt])(path, features)
    if fmt == "onnx":
        return load_onnx(path, features)
    if fmt == "pickle/joblib":
        import joblib

        model = joblib.load(path)
        return _frame_of(features), lambda x: model.predict_proba(x)[:, 1]
    if fmt == "skops":
        return load_skops(path, features)
    if fmt == "mlflow-pyfunc":
        import mlflow.pyfunc

        model = mlflow.pyfunc.load_model(path)
        return _frame_of(features), lambda x: _second_column(model.predict(x))
    raise ValueError(f"unknown format {fmt!r}")


def resolve(name: str) -> Any:
    """``module:function`` → the function (this module's own by name, not a second copy)."""
    import importlib

    module, _, function = name.partition(":")
    if module == "labs.packaging.probe":
        return globals()[function]
    return getattr(importlib.import_module(module), function)


def load_onnx(path: str, features: list[str]) -> Any:
    """The ONNX graph in onnxruntime, one thread; numbers fed as float32, categories as text."""
    import numpy as np
    import onnxruntime

    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = 1
    session = onnxruntime.InferenceSession(path, options, providers=["CPUExecutionProvider"])
    kinds = {i.name: i.type for i in session.get_inputs()}

    def prepare(cols: dict[str, Any]) -> Any:
        def typed(c: str) -> Any:
            return np.asarray(cols[c], dtype=np.float32 if kinds[c] == "tensor(float)" else str)

        return {c: typed(c).reshape(-1, 1) for c in features}

    return prepare, lambda feed: session.run(["probabilities"], feed)[0][:, 1]


def load_skops(path: str, features: list[str]) -> Any:
    """The skops file through the project's loader (exact-type allowlist)."""
    from labs.common.tracking import load_model_file

    model = load_model_file(Path(path))
    return _frame_of(features), lambda x: model.predict_proba(x)[:, 1]


def _frame_of(features: list[str]) -> Any:
    import pandas as pd

    def frame(cols: dict[str, Any]) -> Any:
        return pd.DataFrame({c: cols[c] for c in features})

    return frame


def _second_column(predicted: Any) -> Any:
    import numpy as np

    array = np.asarray(predicted)
    return array[:, 1] if array.ndim == 2 else array


def _median_ms(call: Any, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        call()
        times.append(time.perf_counter() - t)
    return 1000 * statistics.median(times)


def measure_format(spec: dict[str, Any], start: float) -> dict[str, Any]:
    fmt, features = spec["format"], spec["features"]
    loaders = spec.get("loaders", {})
    prepare, predict = _loader(fmt, spec["path"], features, loaders)
    load_s = time.perf_counter() - start
    modules = len(sys.modules)  # the work behind load_s, counted: modules imported to load

    import numpy as np

    with np.load(spec["data"]) as data:
        cols = {c: data[c] for c in features}
    first = {c: v[:1] for c, v in cols.items()}
    batch = {c: v[: spec["batch_rows"]] for c, v in cols.items()}
    x1, xb, xall = prepare(first), prepare(batch), prepare(cols)
    t = time.perf_counter()
    predict(x1)
    first_prediction_ms = 1000 * (time.perf_counter() - t)
    result: dict[str, Any] = {
        "format": fmt,
        "load_s": load_s,
        "modules_at_load": modules,
        "first_prediction_ms": first_prediction_ms,
        "one_row_ms": _median_ms(lambda: predict(x1), spec["one_row_repeats"]),
        "batch_ms": _median_ms(lambda: predict(xb), spec["batch_repeats"]),
        "batch_rows": int(len(next(iter(batch.values())))),
    }
    proba = np.asarray(predict(xall), dtype=float)
    np.save(spec["out"], proba)
    planted = spec.get("planted")
    if planted:
        result["planted"] = load_planted(fmt, planted, xall, proba, features, loaders)
    return result


def load_planted(
    fmt: str,
    planted: dict[str, str],
    xall: Any,
    clean: Any,
    features: list[str],
    loaders: dict[str, str],
) -> dict[str, Any]:
    """Load the planted file the way this format is normally loaded; did the payload run?"""
    import numpy as np

    marker = Path(planted["marker"])
    out: dict[str, Any] = {"refused": False, "error": ""}
    try:
        _, predict = _loader(fmt, planted["path"], features, loaders)
        out["max_abs_dp_vs_clean"] = float(np.max(np.abs(predict(xall) - clean)))
    except Exception as err:  # the refusal we want to see, reported as data
        folder = str(Path(planted["path"]).parent) + "/"
        out["refused"] = True
        out["error"] = f"{type(err).__name__}: {err}".replace(folder, "")[:300]
    out["payload_ran"] = marker.exists()
    if fmt == "skops":
        # The opposite habit: trust whatever types the file asks for.
        import skops.io

        asked = skops.io.get_untrusted_types(file=planted["path"])
        trust_marker = Path(planted["trust_all_marker"])
        skops.io.load(_retarget(planted["path"], marker, trust_marker), trusted=asked)
        out["asked_types"] = asked
        out["trust_all_payload_ran"] = trust_marker.exists()
    return out


def _retarget(path: str, marker: Path, new_marker: Path) -> str:
    """A copy of the planted skops file whose payload writes ``new_marker`` instead."""
    import zipfile

    copy = Path(path).with_name("planted-trust-all.skops")
    with zipfile.ZipFile(path) as source, zipfile.ZipFile(copy, "w") as target:
        for name in source.namelist():
            data = source.read(name)
            if name == "schema.json":
                data = data.replace(str(marker).encode(), str(new_marker).encode())
            target.writestr(name, data)
    return str(copy)


# --- serverless -------------------------------------------------------------------------------


def measure_handler(spec: dict[str, Any], start: float) -> dict[str, Any]:
    import os
    import types

    os.environ.update(
        PACKAGING_ARTEFACT=spec["path"], PACKAGING_KIND=spec["kind"], PACKAGING_LOG=spec["log"]
    )
    from labs.packaging import handler as lambda_module
    from labs.packaging.handler import api_gateway_event

    handler = resolve(spec.get("handler", "labs.packaging.handler:handler"))
    one = api_gateway_event(Path(spec["one_row_body"]).read_text())
    batch = api_gateway_event(Path(spec["batch_body"]).read_text())
    context = types.SimpleNamespace(function_name="churn-predict", aws_request_id="lab")
    first = handler(one, context)
    cold_s = time.perf_counter() - start
    builds_cold = lambda_module.BUILDS["apps"]
    warm_ms = _median_ms(lambda: handler(one, context), spec["one_row_repeats"])
    batch_ms = _median_ms(lambda: handler(batch, context), spec["batch_repeats"])
    last = handler(batch, context)
    return {
        "kind": spec["kind"],
        "cold_s": cold_s,
        "warm_ms": warm_ms,
        "batch_ms": batch_ms,
        "status": [first["statusCode"], last["statusCode"]],
        "calls": 2 + spec["one_row_repeats"] + spec["batch_repeats"],
        "app_builds_cold": builds_cold,  # the work behind cold_s and warm_ms, counted
        "app_builds": lambda_module.BUILDS["apps"],
        "proba": json.loads(last["body"])["churn_probability"],
    }


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
