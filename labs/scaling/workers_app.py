"""The project's serving app as a uvicorn factory, so ``uvicorn --workers N`` can start it in N
processes (uvicorn needs an import string for more than one worker).

``SCALING_MODEL_FILE`` names the skops file the lab just wrote (loaded with the allowlist);
each worker logs predictions to its own SQLite file under ``SCALING_LOG_DIR``, because the
prediction log has a single writer per file.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any


def app() -> Any:
    """The serving app of :mod:`labs.common.serving.app` for this worker process."""
    from labs.common.serving.app import create_app
    from labs.common.serving.scoring import LoadedModel, build_scorer
    from labs.common.tracking import load_model_file

    model_file = Path(os.environ["SCALING_MODEL_FILE"])
    model = load_model_file(model_file)
    scorer, kind = build_scorer(model)
    uri = model_file.resolve().as_uri()
    loaded = LoadedModel(model, uri, "scaling-lab", "file", scorer, kind)
    log = Path(os.environ["SCALING_LOG_DIR"]) / f"predictions-worker-{os.getpid()}.sqlite"
    return create_app(uri, log, loaded=loaded)
