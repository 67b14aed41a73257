"""A Lambda-style entry point for the project's serving app: ``handler(event, context)``.

mangum translates an API Gateway event into an ASGI request for the FastAPI app
(:func:`labs.common.serving.app.create_app`) and the response back into the event shape
Lambda returns. The app is built on the first call, as a Lambda runtime does in a fresh
container: that first call is the *cold start*; later calls in the same process are warm.

Configuration comes from the environment, as on Lambda: ``PACKAGING_ARTEFACT`` (a skops or
ONNX file), ``PACKAGING_KIND`` (``sklearn`` or ``onnx``), ``PACKAGING_LOG`` (the prediction log;
``/tmp`` is the only writable place on Lambda, and it is lost with the container).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

_HANDLER: Callable[[dict[str, Any], Any], dict[str, Any]] | None = None
BUILDS = {"apps": 0}  # serving apps built in this process: the cold start's work, counted


def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    """The function Lambda calls for every event."""
    global _HANDLER
    if _HANDLER is None:
        _HANDLER = make_handler(
            Path(os.environ["PACKAGING_ARTEFACT"]),
            os.environ.get("PACKAGING_KIND", "sklearn"),
            Path(os.environ.get("PACKAGING_LOG", "/tmp/predictions.sqlite")),
        )
    return _HANDLER(event, context)


def make_handler(
    artefact: Path, kind: str, log_path: Path
) -> Callable[[dict[str, Any], Any], dict[str, Any]]:
    """The serving app around the model in ``artefact``, wrapped by mangum."""
    from mangum import Mangum

    from labs.common.serving.app import create_app

    loaded = load_onnx(artefact) if kind == "onnx" else load_skops(artefact)
    BUILDS["apps"] += 1
    return Mangum(create_app(loaded.uri, log_path, loaded=loaded), lifespan="auto")


def load_skops(path: Path) -> Any:
    """The skops file (allowlisted types), scored as the serving app always scores it."""
    from labs.common.serving.scoring import LoadedModel, build_scorer
    from labs.common.tracking import load_model_file

    model = load_model_file(path)
    scorer, scorer_kind = build_scorer(model)
    return LoadedModel(model, f"file:{path}", "churn-model", "skops", scorer, scorer_kind)


def load_onnx(path: Path) -> Any:
    """The ONNX graph in onnxruntime: no scikit-learn, no skops, no pickle in the process."""
    import numpy as np
    import onnxruntime

    from labs.common.data import CATEGORICAL_FEATURES, NUMERIC_FEATURES
    from labs.common.serving.scoring import LoadedModel

    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = 1  # like scikit-learn here: one core per request
    session = onnxruntime.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])

    def score(rows: Sequence[Any]) -> np.ndarray:
        feed = {
            c: np.array([[getattr(r, c)] for r in rows], dtype=np.float32) for c in NUMERIC_FEATURES
        }
        feed.update({c: np.array([[getattr(r, c)] for r in rows]) for c in CATEGORICAL_FEATURES})
        return session.run(["probabilities"], feed)[0][:, 1].astype(float)

    return LoadedModel(session, f"file:{path}", "churn-model", "onnx", score, "onnx")


def api_gateway_event(body: str, path: str = "/predict", method: str = "POST") -> dict[str, Any]:
    """An API Gateway HTTP API (payload 2.0) event, as Lambda receives it."""
    return {
        "version": "2.0",
        "routeKey": f"{method} {path}",
        "rawPath": path,
        "rawQueryString": "",
        "headers": {"content-type": "application/json", "host": "lab.execute-api.local"},
        "requestContext": {
            "accountId": "000000000000",
            "apiId": "lab",
            "domainName": "lab.execute-api.local",
            "http": {
                "method": method,
                "path": path,
                "protocol": "HTTP/1.1",
                "sourceIp": "127.0.0.1",
                "userAgent": "labs.packaging",
            },
            "requestId": "lab-request",
            "routeKey": f"{method} {path}",
            "stage": "$default",
            "timeEpoch": 0,
        },
        "body": body,
        "isBase64Encoded": False,
    }
