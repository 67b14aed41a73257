"""Broken parts the packaging counterfactuals substitute inside the fresh measuring processes
(named ``labs.packaging.shortcuts:<function>`` in a probe's spec). They live apart from
``counterfactuals.py``, which imports the whole lab: a probe imports only what its loader needs,
so what it measures is the loader's own cost.
"""

from __future__ import annotations

from typing import Any


def onnx_through_the_training_stack(path: str, features: list[str]) -> Any:
    """An ONNX service that still imports scikit-learn, pandas and skl2onnx to build its
    inputs as a DataFrame (the exporter's helpers reused in serving)."""
    import numpy as np
    import pandas as pd
    import skl2onnx  # noqa: F401 — the converter, imported for its type helpers
    import sklearn.pipeline  # noqa: F401 — "to be safe", the training stack is loaded too

    from labs.packaging.probe import load_onnx

    _, predict = load_onnx(path, features)

    def prepare(cols: dict[str, Any]) -> Any:
        frame = pd.DataFrame({c: cols[c] for c in features})
        return {
            c: (
                frame[c].to_numpy(dtype=np.float32)
                if frame[c].dtype.kind in "if"
                else frame[c].to_numpy(dtype=str)
            ).reshape(-1, 1)
            for c in features
        }

    return prepare, predict


def onnx_with_on_load_hook(path: str, features: list[str]) -> Any:
    """An in-house ONNX wrapper that honours an ``on_load`` metadata entry as a start-up hook:
    the file's strings become code."""
    import onnx

    from labs.packaging.probe import load_onnx

    for entry in onnx.load(path).metadata_props:
        if entry.key == "on_load":
            exec(entry.value)  # noqa: S102 — the counterfactual: a loader that runs the file
    return load_onnx(path, features)


def skops_trusting_prefixes(path: str, features: list[str]) -> Any:
    """skops loaded with every type the file asks for that starts with a 'standard' prefix
    (``sklearn.``, ``numpy.``, ``builtins.``) trusted — an allowlist by module prefix."""
    from pathlib import Path

    import pandas as pd
    import skops.io

    asked = skops.io.get_untrusted_types(file=Path(path))
    trusted = [t for t in asked if t.startswith(("sklearn.", "numpy.", "builtins."))]
    model = skops.io.load(Path(path), trusted=trusted)

    def frame(cols: dict[str, Any]) -> Any:
        return pd.DataFrame({c: cols[c] for c in features})

    return frame, lambda x: model.predict_proba(x)[:, 1]


def handler_built_per_call(event: dict[str, Any], context: Any) -> dict[str, Any]:
    """A Lambda handler that builds the serving app inside the function, on every call:
    every call pays the cold start's work again."""
    import os
    from pathlib import Path

    from labs.packaging.handler import make_handler

    app = make_handler(
        Path(os.environ["PACKAGING_ARTEFACT"]),
        os.environ.get("PACKAGING_KIND", "sklearn"),
        Path(os.environ.get("PACKAGING_LOG", "/tmp/predictions.sqlite")),
    )
    return app(event, context)
